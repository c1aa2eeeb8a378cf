"""Records → the rows TRL trains on, each already within ``max_length`` tokens.

TRL handles an overlong row its own way: the SFT trainer cuts it from the end (and drops it when no
label survives), the DPO trainer drops a row whose prompt alone fills ``max_length`` and cuts the others
from the end, cutting the answer it is meant to learn. Both lose the turn the row exists for, silently.
So turnwise fits every row first: the oldest user/assistant pairs go (the system message and the last turn
stay, see :func:`turnwise.data.truncate.truncate_history`), and a row that does not fit even then is
dropped. What was shortened and dropped is counted by reason in a :class:`DataReport`, and the trainers
check afterwards that TRL kept every row whole.

Token counts are TRL's own: for SFT the rendering tokenized without special tokens (what
:func:`turnwise.data.render.label_tokens` produces), for DPO ``apply_chat_template(..., tokenize=True)`` of
prompt + answer, as TRL's DPO preprocessing does.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turnwise.data.formats import read_records
from turnwise.data.render import IGNORE_INDEX, label_tokens, render
from turnwise.data.schema import Conversation, Message, PreferencePair
from turnwise.data.truncate import truncate_history
from turnwise.errors import ConfigError

TOO_LONG = "longer than max_length even with all earlier turns dropped"


@dataclass
class DataReport:
    """What happened to the records on their way to the trainer.

    Attributes:
        path: the data file.
        sha256: digest of the file, to tell later whether a resume reads the same data.
        format: the format it was read as.
        read: records read from the file.
        invalid: malformed records skipped (``skip_invalid``), as :meth:`SkipReport.to_dict` reports them.
        rows: rows handed to the trainer.
        shortened: rows that lost their oldest turns to fit ``max_length``.
        pairs_dropped: user/assistant pairs removed over all shortened rows.
        dropped: rows left out, by reason.
        max_tokens: the longest row handed to the trainer, in tokens.
        tokens: tokens over all rows (for DPO, prompt + chosen and prompt + rejected).
        loss_tokens: tokens that carry the SFT loss (SFT only).
    """

    path: str
    sha256: str = ""
    format: str | None = None
    read: int = 0
    invalid: dict[str, Any] = field(default_factory=dict)
    rows: int = 0
    shortened: int = 0
    pairs_dropped: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    max_tokens: int = 0
    tokens: int = 0
    loss_tokens: int = 0

    def keep(self, tokens: int, longest: int, loss_tokens: int = 0) -> None:
        """Count a row of ``tokens`` tokens whose longest sequence has ``longest``."""
        self.rows += 1
        self.tokens += tokens
        self.loss_tokens += loss_tokens
        self.max_tokens = max(self.max_tokens, longest)

    def to_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["dropped"] = dict(self.dropped.most_common())
        return data

    def summary(self) -> str:
        """``read 120, 3 invalid skipped; 115 rows (4 shortened, 6 turn pairs dropped); 2 dropped: 2 × ...``."""
        skipped = self.invalid.get("skipped", 0)
        text = f"read {self.read}" + (f", {skipped} invalid skipped" if skipped else "")
        text += f"; {self.rows} rows ({self.shortened} shortened, {self.pairs_dropped} turn pairs dropped)"
        total = sum(self.dropped.values())
        if total:
            text += f"; {total} dropped: " + "; ".join(f"{n} × {why}" for why, n in self.dropped.most_common())
        return text


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_items(path: str | Path, fmt: str | None, *, skip_invalid: bool, max_rows: int) -> tuple[list, DataReport]:
    """Read every record (or the first ``max_rows``) and start the report."""
    items, skips = read_records(path, fmt, skip_invalid=skip_invalid)
    kept = []
    for item in items:
        kept.append(item)
        if max_rows and len(kept) >= max_rows:
            break
    report = DataReport(str(path), sha256=file_sha256(path), format=skips.fmt, read=skips.read)
    report.invalid = skips.to_dict()
    if not kept:
        raise ConfigError(f"{path}: no usable records to train on ({skips.summary()})")
    return kept, report


def _sft_messages(item: Conversation | PreferencePair) -> list[Message]:
    if isinstance(item, PreferencePair):  # the chosen answer is the conversation worth imitating
        return [*item.prompt, {"role": "assistant", "content": item.chosen}]
    return item.messages


def sft_rows(
    items: Iterable[Conversation | PreferencePair], tokenizer: Any, report: DataReport, *,
    max_length: int, train_on: Sequence[str] = ("assistant",), last_only: bool = False,
) -> list[dict[str, list[int]]]:
    """Tokenized SFT rows ``{"input_ids", "labels"}`` (labels -100 where no loss), each within ``max_length``.

    A row with no token to learn from (``train_on=("assistant",)`` on a conversation with no answer yet)
    is dropped and counted, as TRL would drop it silently. With ``last_only`` only the last of the trained
    messages carries loss (for a preference pair: its chosen answer, the tokens DPO's SFT term covers).
    """

    def count(messages: list[Message]) -> int:
        return len(tokenizer(render(tokenizer, messages, add_generation_prompt=False), add_special_tokens=False)
                   ["input_ids"])

    rows = []
    for item in items:
        kept, info = truncate_history(_sft_messages(item), count, max_length)
        if not info.fits:
            report.dropped[TOO_LONG] += 1
            continue
        ids, labels = label_tokens(tokenizer, kept, train_on=train_on, last_only=last_only)
        loss_tokens = sum(label != IGNORE_INDEX for label in labels)
        if not loss_tokens:
            report.dropped[f"no {' or '.join(train_on)} turn to train on"] += 1
            continue
        _note_shortened(report, info.pairs_dropped)
        report.keep(len(ids), len(ids), loss_tokens)
        rows.append({"input_ids": ids, "labels": labels})
    return rows


def _note_shortened(report: DataReport, pairs_dropped: int) -> None:
    if pairs_dropped:
        report.shortened += 1
        report.pairs_dropped += pairs_dropped


def chat_token_count(tokenizer: Any, messages: list[Message]) -> int:
    """Tokens of a conversation as TRL's DPO preprocessing counts them."""
    return len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])


def dpo_rows(
    items: Iterable[Conversation | PreferencePair], tokenizer: Any, report: DataReport, *, max_length: int
) -> list[dict[str, list[Message]]]:
    """Conversational DPO rows ``{"prompt", "chosen", "rejected"}``, prompt + either answer within ``max_length``.

    Raises:
        ConfigError: a record is a conversation, not a preference pair.
    """
    rows = []
    for item in items:
        if not isinstance(item, PreferencePair):
            raise ConfigError(f"{report.path}: DPO needs preference pairs (prompt/chosen/rejected, the trl-pref "
                              f"format); record {item.id!r} is a conversation")
        answers = [[{"role": "assistant", "content": text}] for text in (item.chosen, item.rejected)]

        def count(prompt: list[Message], answers: list = answers) -> int:
            return max(chat_token_count(tokenizer, [*prompt, *answer]) for answer in answers)

        kept, info = truncate_history(item.prompt, count, max_length)
        if not info.fits:
            report.dropped[TOO_LONG] += 1
            continue
        _note_shortened(report, info.pairs_dropped)
        lengths = [chat_token_count(tokenizer, [*kept, *answer]) for answer in answers]
        report.keep(sum(lengths), max(lengths))
        rows.append({"prompt": kept, "chosen": answers[0], "rejected": answers[1]})
    return rows
