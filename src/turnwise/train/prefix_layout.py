"""The shared-prefix layout of DPO pairs: one history, two answer branches, in one sequence.

TRL's DPOTrainer runs ``prompt + chosen`` and ``prompt + rejected`` as two sequences, so a multi-turn
history is processed twice per pair. Here each pair becomes one segment (Wang & Hegde, "Accelerating Direct
Preference Optimization with Prefix Sharing", arXiv 2410.20305)::

    tokens     h0 h1 .. h(P-2) | hP-1 c0 c1 .. c(C-1) | hP-1 r0 r1 .. r(R-1)
    positions  0  1  .. P-2    | P-1  P  P+1 .. P+C-1 | P-1  P  P+1 .. P+R-1
    branch     0  0  .. 0      | 1    1  1  ..  1     | 2    2  2  ..  2
    predicts   -  -  .. -      | c0   c1 c2 .. -      | r0   r1 r2 .. -

The last prompt token opens *both* branches: its logits predict the first token of each answer, and a
position can carry one label only, so the rejected branch gets its own copy of that token, at the same
position id and seeing the same history, hence the same hidden state. One token per pair buys a layout in
which every position predicts at most one token, which TRL's fused LM head scores as it is.

A token sees the earlier tokens of its own pair that are in the history (branch 0) or in its own branch:
the rejected branch never sees the chosen one (:func:`turnwise.train.prefix_dpo.shared_attention_mask`).
Several pairs may share a row (``pack``): a row never grows beyond the longest pair of the batch, so packing
only fills what would otherwise be padding, and a dense attention mask costs no more than without it.

Everything here is plain lists, no torch: the maths of the layout is pinned by hand-computed tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

IGNORE = -100
PAD_SEGMENT = -1  # pair and branch id of a padding token: it sees only other padding, never a real token


@dataclass(frozen=True)
class PairIds:
    """One tokenized preference pair, split the way TRL's DPO preprocessing splits it.

    Attributes:
        prompt: the history, ending with the assistant header (``prompt_ids``); at least one token.
        chosen: the chosen answer (``chosen_ids``).
        rejected: the rejected answer (``rejected_ids``).
    """

    prompt: list[int]
    chosen: list[int]
    rejected: list[int]

    @property
    def shared_length(self) -> int:
        """Tokens of the pair in the shared layout: P + C + R + 1 (the last prompt token twice)."""
        return len(self.prompt) + len(self.chosen) + len(self.rejected) + 1

    @property
    def plain_length(self) -> int:
        """Tokens of the longer of TRL's two sequences, prompt + the longer answer."""
        return len(self.prompt) + max(len(self.chosen), len(self.rejected))


@dataclass
class SharedRow:
    """One row of the shared batch: one or more pairs, then padding.

    Attributes:
        input_ids: token ids.
        position_ids: rotary positions; each branch restarts where the history ends.
        pair_ids: which pair of the row a token belongs to (``PAD_SEGMENT`` for padding).
        branch_ids: 0 history, 1 chosen branch, 2 rejected branch (``PAD_SEGMENT`` for padding).
        shift_labels: the token each position predicts, ``IGNORE`` where it predicts none that counts.
    """

    input_ids: list[int] = field(default_factory=list)
    position_ids: list[int] = field(default_factory=list)
    pair_ids: list[int] = field(default_factory=list)
    branch_ids: list[int] = field(default_factory=list)
    shift_labels: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.input_ids)

    def extend(self, ids: list[int], positions: list[int], pair: int, branch: int, labels: list[int]) -> None:
        self.input_ids += ids
        self.position_ids += positions
        self.pair_ids += [pair] * len(ids)
        self.branch_ids += [branch] * len(ids)
        self.shift_labels += labels


def add_pair(row: SharedRow, pair: PairIds, pair_id: int) -> tuple[int, int]:
    """Append ``pair`` to ``row``; return where, in the row, the chosen and rejected predictions start.

    The prediction of answer token j sits at ``start + j`` (the branch's first token predicts answer token 0).

    Raises:
        ValueError: the prompt is empty (no token would predict the first answer token).
    """
    if not pair.prompt:
        raise ValueError("a shared-prefix pair needs at least one prompt token to predict its answers from")
    history, opener, p = pair.prompt[:-1], pair.prompt[-1], len(pair.prompt)
    row.extend(history, list(range(p - 1)), pair_id, 0, [IGNORE] * len(history))
    starts = []
    for branch, answer in ((1, pair.chosen), (2, pair.rejected)):
        starts.append(len(row))
        tokens = [opener, *answer]
        row.extend(tokens, list(range(p - 1, p - 1 + len(tokens))), pair_id, branch, [*answer, IGNORE])
    return starts[0], starts[1]


def pack_pairs(lengths: list[int], budget: int) -> list[list[int]]:
    """Group pair indices into rows of at most ``budget`` tokens, first fit, longest pair first.

    A pair longer than ``budget`` gets a row of its own. Rows and the pairs in them come out in a
    deterministic order (by the first pair each row received).
    """
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        for r, left in enumerate(room):
            if lengths[index] <= left:
                rows[r].append(index)
                room[r] -= lengths[index]
                break
        else:
            rows.append([index])
            room.append(budget - lengths[index])
    return rows


def shared_layout(pairs: list[PairIds], pad_token_id: int, *, pack: bool = True) -> tuple[list[SharedRow], list[int]]:
    """Lay ``pairs`` out in shared rows, padded to one length, and map the plain layout onto them.

    Args:
        pairs: the batch, in TRL's order.
        pad_token_id: the padding token.
        pack: put several pairs in a row when they fit within the longest pair's length.

    Returns:
        The rows, and ``index``: for every answer token in the order TRL's plain batch holds them (every
        chosen token of pair 0, 1, ... then every rejected token of pair 0, 1, ...), the flat position
        ``row * row_length + column`` of the shared position that predicts it.
    """
    lengths = [pair.shared_length for pair in pairs]
    groups = pack_pairs(lengths, max(lengths)) if pack else [[i] for i in range(len(pairs))]
    rows, starts = [], {}
    for r, group in enumerate(groups):
        row = SharedRow()
        for pair_id, i in enumerate(group):
            starts[i] = (r, *add_pair(row, pairs[i], pair_id))
        rows.append(row)
    width = max(len(row) for row in rows)
    for row in rows:
        pad = width - len(row)
        row.extend([pad_token_id] * pad, [0] * pad, PAD_SEGMENT, PAD_SEGMENT, [IGNORE] * pad)
    index = []
    for branch in (1, 2):
        for i, pair in enumerate(pairs):
            r, start = starts[i][0], starts[i][branch]
            answer = pair.chosen if branch == 1 else pair.rejected
            index += [r * width + start + j for j in range(len(answer))]
    return rows, index


def segment_index(rows: list[SharedRow]) -> tuple[list[int], list[list[int]], list[int]]:
    """The segments of the mask-free attention (:mod:`turnwise.train.segment_attention`); one pair per row.

    Returns:
        ``(history, rejected, rejected_lengths)``: each row's history length (its chosen branch starts there);
        the flat positions ``row * S + column`` of each row's rejected branch, padded with 0 to the longest;
        each branch's real length.

    Raises:
        ValueError: a row holds more than one pair (lay them out with ``pack=False``).
    """
    width = len(rows[0]) if rows else 0
    history, rejected = [], []
    for r, row in enumerate(rows):
        if any(pair > 0 for pair in row.pair_ids):
            raise ValueError("the segment attention takes one pair per row; lay the pairs out with pack=False")
        history.append(row.branch_ids.count(0))
        rejected.append([r * width + column for column, branch in enumerate(row.branch_ids) if branch == 2])
    lengths = [len(branch) for branch in rejected]
    longest = max(lengths, default=0)
    return history, [branch + [0] * (longest - len(branch)) for branch in rejected], lengths
