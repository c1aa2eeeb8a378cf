"""Paired statistics pinned by hand-computed values (turnwise.eval.stats)."""

from __future__ import annotations

import pytest

from turnwise.eval.stats import mcnemar, p_is, p_text, paired_difference


@pytest.mark.parametrize(("a_only", "b_only", "expected"), [
    (0, 0, 1.0),            # nothing discordant: no evidence either way
    (0, 6, 2 / 64),         # 2 * P(X <= 0), X ~ Bin(6, 1/2) = 2 * 1/64
    (1, 5, 14 / 64),        # 2 * (1 + 6) / 64
    (5, 1, 14 / 64),        # symmetric
    (3, 3, 1.0),            # 2 * (1 + 6 + 15 + 20) / 64 > 1: capped
    (2, 8, 2 * (1 + 10 + 45) / 1024),
])
def test_mcnemar_exact_matches_the_binomial_tail(a_only: int, b_only: int, expected: float) -> None:
    assert mcnemar(a_only, b_only) == pytest.approx(expected)


def test_mcnemar_refuses_negative_counts() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        mcnemar(-1, 2)


def test_paired_difference_on_a_small_literal_table() -> None:
    # three dialogues; A right on 4 of 5 turns, B on 2 of 5: +40 points; discordant: A only 3, B only 1
    pairs = {"d1": [(True, False), (True, True)], "d2": [(True, False), (False, True)], "d3": [(True, False)]}
    result = paired_difference(pairs, resamples=2000)
    assert (result.items, result.clusters) == (5, 3)
    assert (result.a, result.b, result.diff) == (80.0, 40.0, 40.0)
    assert (result.a_only, result.b_only) == (3, 1)
    assert result.p == pytest.approx(2 * (1 + 4) / 16)  # Bin(4, 1/2): P(X <= 1) = 5/16, doubled
    # per dialogue the difference is d1 +1 of 2, d2 0 of 2, d3 +1 of 1: no resample goes below 0 (all d2)
    # or above 100 (all d3), and both extremes are likely enough (1/27 each) to be the 2.5% and 97.5% points
    assert (result.low, result.high) == (0.0, 100.0)
    assert result.text() == "+40.0 points [+0.0, +100.0], p = 0.625 (McNemar: 3 vs 1 items)"


def test_the_bootstrap_resamples_dialogues_not_turns() -> None:
    # two dialogues: one where A wins every turn, one a tie; resampling dialogues gives 0, 50 or 100 points
    # (each dialogue has 1 turn); with identical clusters the interval has no width at all
    mixed = paired_difference({"d1": [(True, False)], "d2": [(True, True)]}, resamples=4000)
    assert (mixed.low, mixed.high) == (0.0, 100.0)
    same = paired_difference({f"d{i}": [(True, False), (True, True)] for i in range(10)}, resamples=500)
    assert same.low == same.high == same.diff == 50.0
    assert paired_difference({"d1": [(True, False)], "d2": [(True, True)]}, seed=3) == \
        paired_difference({"d1": [(True, False)], "d2": [(True, True)]}, seed=3)  # seeded: reproducible


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="no paired items"):
        paired_difference({"d1": []})
    with pytest.raises(ValueError, match="level"):
        paired_difference({"d1": [(True, True)]}, level=1.5)


def test_p_values_read_as_a_reader_wants() -> None:
    assert (p_text(0.0004), p_text(0.0123), p_text(1.0)) == ("< 0.001", "0.012", "1.000")
    assert (p_is(0.0004), p_is(0.0123)) == ("p < 0.001", "p = 0.012")  # in a sentence
