"""Paired comparisons of two models that answered the same items: is a difference more than noise?

    pairs = {"seed0/d1": [(True, False), (True, True)], "seed0/d2": [(False, False)], ...}
    result = paired_difference(pairs)     # A minus B, in points, with a 95% interval and a p-value
    result.text()                         # "+4.1 points [+1.2, +7.0], p = 0.006 (McNemar: 31 vs 12 items)"

Two tests, as in the evaluation of paired classifiers and of multi-turn dialogue systems:

- **McNemar's exact test** on item-level outcomes (Dietterich, "Approximate statistical tests for comparing
  supervised classification learning algorithms", Neural Computation 1998): only the items where exactly one
  model is right count; under the null each of those favours A or B with probability 1/2, so the two-sided
  p-value is twice the binomial tail of the smaller count (capped at 1).
- **A paired bootstrap over clusters** (Efron & Tibshirani 1993; Koehn, "Statistical significance tests for
  machine translation evaluation", EMNLP 2004): turns of one dialogue are not independent (a model that lost the
  referent at turn 2 tends to stay lost), so whole dialogues are resampled with replacement, both models'
  outcomes together, and the difference in accuracy is recomputed; the percentile interval is the CI.

Items are (A right, B right) pairs grouped by cluster id; pool several seeds by prefixing the ids.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

RESAMPLES = 10_000
LEVEL = 0.95


def mcnemar(a_only: int, b_only: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts: items only A got right, items only B did."""
    if a_only < 0 or b_only < 0:
        raise ValueError(f"discordant counts must be non-negative, got {a_only} and {b_only}")
    n = a_only + b_only
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(a_only, b_only) + 1))
    return min(1.0, 2 * tail / 2 ** n)


@dataclass(frozen=True)
class PairedDifference:
    """A minus B on the same items.

    Attributes:
        items: paired items (turns); clusters: the groups resampled (dialogues).
        a, b: each model's accuracy, in percent.
        diff: ``a - b`` in percentage points; low, high: its bootstrap interval at ``level``.
        a_only, b_only: items only A got right, only B.
        p: McNemar's exact two-sided p-value.
    """

    items: int
    clusters: int
    a: float
    b: float
    diff: float
    low: float
    high: float
    level: float
    a_only: int
    b_only: int
    p: float

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}

    def text(self) -> str:
        """``+4.1 points [+1.2, +7.0], p = 0.006 (McNemar: 31 vs 12 items)``."""
        return (f"{self.diff:+.1f} points [{self.low:+.1f}, {self.high:+.1f}], {p_is(self.p)} "
                f"(McNemar: {self.a_only} vs {self.b_only} items)")


def p_text(p: float) -> str:
    """A p-value as a reader wants it: three decimals, or ``< 0.001``."""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_is(p: float) -> str:
    """``p = 0.006``, or ``p < 0.001``: the p-value in a sentence."""
    return f"p {p_text(p)}" if p < 0.001 else f"p = {p_text(p)}"


def paired_difference(pairs: Mapping[str, Sequence[tuple[bool, bool]]], *, resamples: int = RESAMPLES,
                      level: float = LEVEL, seed: int = 0) -> PairedDifference:
    """A's accuracy minus B's over the paired items, with a cluster bootstrap interval and McNemar's p.

    Args:
        pairs: cluster id -> its items, each ``(A right, B right)``; clusters without items are ignored.
        resamples: bootstrap resamples of the clusters.
        level: the interval's coverage (0.95: the 2.5th and 97.5th percentiles).
        seed: the resampling seed (the same inputs give the same interval).

    Raises:
        ValueError: no items, or a level outside (0, 1).
    """
    import numpy as np

    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    groups = [items for items in pairs.values() if items]
    if not groups:
        raise ValueError("no paired items to compare")
    n = np.array([len(items) for items in groups], dtype=np.int64)
    right_a = np.array([sum(bool(a) for a, _ in items) for items in groups], dtype=np.int64)
    right_b = np.array([sum(bool(b) for _, b in items) for items in groups], dtype=np.int64)
    a_only = sum(bool(a) and not b for items in groups for a, b in items)
    b_only = sum(bool(b) and not a for items in groups for a, b in items)
    total = int(n.sum())
    diff = 100 * int(right_a.sum() - right_b.sum()) / total
    picks = np.random.default_rng(seed).integers(0, len(groups), size=(resamples, len(groups)))
    boot = 100 * (right_a - right_b)[picks].sum(axis=1) / n[picks].sum(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(boot, [tail, 1 - tail], method="inverted_cdf")
    return PairedDifference(total, len(groups), 100 * int(right_a.sum()) / total, 100 * int(right_b.sum()) / total,
                            diff, float(low), float(high), level, a_only, b_only, mcnemar(a_only, b_only))
