"""A small logistic regression over the cue kinds: the rules' weights, fitted instead of set by hand.

    detector = fit_detector(cue_lists, labels)          # a RuleDetector with learned weights
    report = cross_validate(cue_lists, labels, groups)  # k folds, a dialogue never split across folds

Features are the same as the rules' (one indicator per cue kind present), so a fitted model is a
:class:`~turnwise.detect.rules.RuleDetector` whose weights can be read and compared with the hand-set
ones. Classes are weighted to balance (CANARD is 97% dependent), with an L2 penalty. Plain Python:
identical rows are merged (a few hundred distinct ones), so Newton's method takes well under a second.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence

from turnwise.detect.cues import Cue
from turnwise.detect.rules import RuleDetector


def _features(cues: Sequence[Cue], kinds: Sequence[str]) -> list[float]:
    present = {c.kind for c in cues}
    return [1.0 if k in present else 0.0 for k in kinds]


def fit_detector(
    cue_lists: Sequence[Sequence[Cue]], labels: Sequence[bool], *, l2: float = 1.0, iterations: int = 25,
    kinds: Sequence[str] | None = None,
) -> RuleDetector:
    """Fit a class-balanced L2 logistic regression on cue-kind indicators (Newton's method).

    Args:
        cue_lists: the cues of each training turn.
        labels: True for dependent.
        l2: penalty on the weights (not the bias).
        iterations: Newton steps (it converges in well under 25 on these features).
        kinds: the cue kinds to use (default: every kind seen in training).
    """
    kinds = sorted({c.kind for cues in cue_lists for c in cues}) if kinds is None else list(kinds)
    positives = sum(bool(y) for y in labels)
    if not 0 < positives < len(labels):
        raise ValueError("training data needs both classes")
    # Each class carries half of the total weight; identical rows are merged (binary features repeat a lot).
    class_weight = {True: len(labels) / (2 * positives), False: len(labels) / (2 * (len(labels) - positives))}
    rows: Counter[tuple[tuple[float, ...], bool]] = Counter()
    for cues, y in zip(cue_lists, labels, strict=True):
        rows[(tuple([1.0, *_features(cues, kinds)]), bool(y))] += class_weight[bool(y)]
    theta = [0.0] * (len(kinds) + 1)
    for _ in range(iterations):
        theta = _newton_step(theta, rows, l2)
    return RuleDetector({k: round(t, 3) for k, t in zip(kinds, theta[1:], strict=True)}, round(theta[0], 3))


def _newton_step(theta: list[float], rows: Counter, l2: float) -> list[float]:
    d = len(theta)
    grad = [0.0] + [l2 * t for t in theta[1:]]
    hess = [[(l2 if i == j and i else 0.0) for j in range(d)] for i in range(d)]
    for (x, y), weight in rows.items():
        p = 1.0 / (1.0 + math.exp(-sum(t * xi for t, xi in zip(theta, x, strict=True))))
        err, curv = weight * (p - y), weight * p * (1 - p)
        for i in range(d):
            if x[i]:
                grad[i] += err
                for j in range(d):
                    if x[j]:
                        hess[i][j] += curv
    step = _solve([row[:] for row in hess], grad)
    return [t - s for t, s in zip(theta, step, strict=True)]


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Solve ``a x = b`` by Gaussian elimination with partial pivoting (a is small and positive definite)."""
    n = len(b)
    b = b[:]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[pivot], b[col], b[pivot] = a[pivot], a[col], b[pivot], b[col]
        if abs(a[col][col]) < 1e-12:
            continue
        for r in range(col + 1, n):
            f = a[r][col] / a[col][col]
            if f:
                a[r] = [x - f * y for x, y in zip(a[r], a[col], strict=True)]
                b[r] -= f * b[col]
    x = [0.0] * n
    for r in reversed(range(n)):
        if abs(a[r][r]) >= 1e-12:
            x[r] = (b[r] - sum(a[r][c] * x[c] for c in range(r + 1, n))) / a[r][r]
    return x


def grouped_folds(groups: Sequence[str], k: int = 5, seed: int = 0) -> list[list[int]]:
    """Split row indices into ``k`` folds with every group (dialogue) in one fold."""
    names = sorted(set(groups))
    random.Random(seed).shuffle(names)
    fold_of = {name: i % k for i, name in enumerate(names)}
    folds: list[list[int]] = [[] for _ in range(k)]
    for i, g in enumerate(groups):
        folds[fold_of[g]].append(i)
    return folds


def cross_validate(
    cue_lists: Sequence[Sequence[Cue]], labels: Sequence[bool], groups: Sequence[str], *, k: int = 5, seed: int = 0
) -> list[bool]:
    """Out-of-fold predictions: each turn labelled by a model that never saw its dialogue."""
    predicted = [False] * len(labels)
    for fold in grouped_folds(groups, k, seed):
        held = set(fold)
        train = [i for i in range(len(labels)) if i not in held]
        detector = fit_detector([cue_lists[i] for i in train], [labels[i] for i in train])
        for i in fold:
            predicted[i] = detector.score(cue_lists[i]) > 0
    return predicted
