"""Precision, recall and F1 for both classes of a binary labelling, and their macro average.

Macro-F1 is the mean of the dependent and the standalone F1, so a detector that calls everything
dependent scores well on one class and zero on the other: on a set that is 77% dependent it gets
0.87 F1 on "dependent" and 0.43 macro-F1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int


def class_scores(gold: Sequence[bool], predicted: Sequence[bool], positive: bool) -> ClassScores:
    """Scores of one class; 0 where a ratio has nothing to divide by."""
    tp = sum(g == positive and p == positive for g, p in zip(gold, predicted, strict=True))
    predicted_n = sum(p == positive for p in predicted)
    support = sum(g == positive for g in gold)
    precision = tp / predicted_n if predicted_n else 0.0
    recall = tp / support if support else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return ClassScores(precision, recall, f1, support)


@dataclass(frozen=True)
class BinaryReport:
    dependent: ClassScores
    standalone: ClassScores

    @property
    def macro_f1(self) -> float:
        return (self.dependent.f1 + self.standalone.f1) / 2

    @property
    def n(self) -> int:
        return self.dependent.support + self.standalone.support


def evaluate(gold: Sequence[bool], predicted: Sequence[bool]) -> BinaryReport:
    """Both classes' scores for ``predicted`` dependent-labels against ``gold``."""
    return BinaryReport(class_scores(gold, predicted, True), class_scores(gold, predicted, False))
