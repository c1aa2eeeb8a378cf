"""The shared-prefix layout, on the two pairs of TRL's ``DataCollatorForPreference`` docstring, by hand.

Pair A: prompt [1, 2, 3], chosen [4, 5], rejected [6]. Its segment is the history without its last token,
then that token opening each branch: ``1 2 | 3 4 5 | 3 6`` (7 = 3 + 2 + 1 + 1 tokens). Positions restart
at the last prompt token's (2) for each branch. Each branch token predicts the next one of its answer;
the last one of a branch predicts nothing that counts.

Pair B: prompt [7, 8], chosen [9], rejected [10, 11]: ``7 | 8 9 | 8 10 11`` (6 tokens).
"""

from __future__ import annotations

import pytest

from turnwise.train.prefix_layout import (
    IGNORE,
    PairIds,
    SharedRow,
    add_pair,
    pack_pairs,
    segment_index,
    shared_layout,
)

A = PairIds([1, 2, 3], [4, 5], [6])
B = PairIds([7, 8], [9], [10, 11])
X = IGNORE


def test_one_pair_segment():
    row = SharedRow()
    starts = add_pair(row, A, 0)
    assert row.input_ids == [1, 2, 3, 4, 5, 3, 6]
    assert row.position_ids == [0, 1, 2, 3, 4, 2, 3]
    assert row.branch_ids == [0, 0, 1, 1, 1, 2, 2]
    assert row.pair_ids == [0] * 7
    assert row.shift_labels == [X, X, 4, 5, X, 6, X]
    assert starts == (2, 5)  # chosen token j is predicted at 2 + j, rejected token j at 5 + j
    assert (A.shared_length, A.plain_length) == (7, 5)


def test_two_rows_padded_and_the_plain_index():
    """A (7 tokens) and B (6) do not fit together within the longest pair (7): two rows, B padded by one.

    The plain batch holds the answer tokens as chosen A (4, 5), chosen B (9), rejected A (6), rejected B
    (10, 11); each is predicted at row * 7 + column: 0*7+2, 0*7+3, 1*7+1, 0*7+5, 1*7+3, 1*7+4.
    """
    rows, index = shared_layout([A, B], pad_token_id=0)
    assert [row.input_ids for row in rows] == [[1, 2, 3, 4, 5, 3, 6], [7, 8, 9, 8, 10, 11, 0]]
    assert rows[1].position_ids == [0, 1, 2, 1, 2, 3, 0]
    assert rows[1].branch_ids == [0, 1, 1, 2, 2, 2, -1]
    assert rows[1].pair_ids == [0, 0, 0, 0, 0, 0, -1]
    assert rows[1].shift_labels == [X, 9, X, 10, 11, X, X]
    assert index == [2, 3, 8, 5, 10, 11]
    flat = [label for row in rows for label in row.shift_labels]
    assert [flat[i] for i in index] == [4, 5, 9, 6, 10, 11]


def test_first_fit_longest_first():
    assert pack_pairs([7, 6, 1, 3], 7) == [[0], [1, 2], [3]]  # 3 fits nowhere, 1 fits beside the 6
    assert pack_pairs([7, 3, 4], 7) == [[0], [2, 1]]
    assert pack_pairs([7, 6, 4, 6], 7) == [[0], [1], [3], [2]]
    assert pack_pairs([5, 5], 4) == [[0], [1]]  # a pair longer than the budget gets a row of its own


def test_packed_row_keeps_pairs_apart():
    """E = [5] [6] [7] and G = [9] [10] [11] (4 tokens each, no history left once the last prompt token
    opens the branches) fit together beside nothing of L's 9 tokens = 6 + 1 + 1 + 1: rows [L], [E, G].

    Row 1 is ``5 6 5 7 | 9 10 9 11 | pad`` with pair ids 0 0 0 0 1 1 1 1 -1. In the plain order (chosen
    E, L, G, then rejected E, L, G) the predictions sit at 9+0, 0+5, 9+4, 9+2, 0+7, 9+6.
    """
    e, g = PairIds([5], [6], [7]), PairIds([9], [10], [11])
    long = PairIds([1, 2, 3, 4, 5, 6], [7], [8])
    rows, index = shared_layout([e, long, g], pad_token_id=0)
    assert [row.input_ids for row in rows] == [[1, 2, 3, 4, 5, 6, 7, 6, 8], [5, 6, 5, 7, 9, 10, 9, 11, 0]]
    assert rows[1].pair_ids == [0, 0, 0, 0, 1, 1, 1, 1, -1]
    assert rows[1].position_ids == [0, 1, 0, 1, 0, 1, 0, 1, 0]
    assert rows[1].branch_ids == [1, 1, 2, 2, 1, 1, 2, 2, -1]
    assert rows[1].shift_labels == [6, X, 7, X, 10, X, 11, X, X]
    assert index == [9, 5, 13, 11, 7, 15]


def test_no_packing_and_empty_prompt():
    rows, index = shared_layout([A, B], pad_token_id=0, pack=False)
    assert len(rows) == 2 and index == [2, 3, 8, 5, 10, 11]
    with pytest.raises(ValueError, match="at least one prompt token"):
        shared_layout([PairIds([], [1], [2])], pad_token_id=0)


def test_segment_index_by_hand():
    """Rows [A] and [B, pad] (width 7, pack=False). A: history columns 0 1, rejected branch 5 6. B (flat 7..):
    history column 7, chosen 8 9, rejected 10 11 12; padding 13."""
    rows, _ = shared_layout([A, B], pad_token_id=0, pack=False)
    history, rejected, lengths = segment_index(rows)
    assert history == [2, 1]
    assert rejected == [[5, 6, 0], [10, 11, 12]]
    assert lengths == [2, 3]


def test_segment_index_refuses_packed_rows():
    e, g = PairIds([5], [6], [7]), PairIds([9], [10], [11])
    long = PairIds([1, 2, 3, 4, 5, 6], [7], [8])
    rows, _ = shared_layout([e, long, g], pad_token_id=0)
    with pytest.raises(ValueError, match="one pair per row"):
        segment_index(rows)
    rows, _ = shared_layout([e, long, g], pad_token_id=0, pack=False)
    assert segment_index(rows) == ([0, 5, 0], [[2, 3], [9 + 7, 9 + 8], [18 + 2, 18 + 3]], [2, 2, 2])
