"""Mix scorers (LongReward with a verifiable check, two checks...) into one, by name.

    scorer = build_scorer(["longreward", "numeric=2"], judge=judge, retriever=retriever)

A spec is ``NAME[=WEIGHT]``: ``longreward``, ``exact``, ``normalized``, ``numeric``, ``rm:PATH`` (a
reward model, :mod:`turnwise.score.reward_model`) or a ``module:function`` check. The mixed total is the
weighted mean of each scorer's own total (``Σ w·total / Σ w`` over the scorers that apply to the
response), so LongReward's four dimensions count as one scorer, not four; one failed scorer fails the
response.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from turnwise.errors import ConfigError
from turnwise.judge.core import Judge
from turnwise.retrieval.retriever import Retriever
from turnwise.score.longreward import LongRewardConfig, LongRewardScorer
from turnwise.score.reward_model import PREFIX as RM_PREFIX
from turnwise.score.reward_model import RewardModelScorer
from turnwise.score.types import OK, ScoreBatch, ScoreCost, ScoreInput, Scorer, ScoreResult
from turnwise.score.verifiable import BUILTIN_CHECKS, VerifiableScorer, function_scorer


class MixedScorer:
    """Several scorers as one; see the module docstring.

    Args:
        parts: ``(scorer, weight)`` pairs; dimension names must not repeat.
    """

    def __init__(self, parts: Sequence[tuple[Scorer, float]]):
        if not parts:
            raise ConfigError("a mixed scorer needs at least one scorer")
        names = [d for scorer, _ in parts for d in scorer.dimensions]
        if len(set(names)) != len(names):
            raise ConfigError(f"mixed scorers report the same dimension twice: {names}")
        if any(w <= 0 for _, w in parts):
            raise ConfigError("scorer weights must be positive")
        self.parts = list(parts)
        self.name = "+".join(scorer.name for scorer, _ in parts)
        self.dimensions = tuple(names)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "parts": [{**s.describe(), "weight": w} for s, w in self.parts]}

    async def score(self, item: ScoreInput, responses: Sequence[str]) -> ScoreBatch:
        batches = await asyncio.gather(*(scorer.score(item, responses) for scorer, _ in self.parts))
        shared = ScoreCost()
        for batch in batches:
            shared += batch.shared
        results = [self._merge([b.results[i] for b in batches]) for i in range(len(responses))]
        return ScoreBatch(results, shared)

    def _merge(self, results: list[ScoreResult]) -> ScoreResult:
        dimensions, weights = [], {}
        for (_, weight), result in zip(self.parts, results, strict=True):
            dimensions.extend(result.dimensions)
            ok = [d.name for d in result.dimensions if d.status == OK]
            inner = sum(result.weights.get(name, 1.0) for name in ok)
            for name in ok:  # the part's own weighting, scaled so the part weighs `weight` in all
                weights[name] = weight * result.weights.get(name, 1.0) / inner
        return ScoreResult(dimensions, weights)


def parse_spec(spec: str) -> tuple[str, float]:
    """``numeric=2`` → ``("numeric", 2.0)``; the weight defaults to 1."""
    name, sep, weight = spec.partition("=")
    try:
        return name.strip(), float(weight) if sep else 1.0
    except ValueError as exc:
        raise ConfigError(f"scorer spec {spec!r}: the weight after '=' must be a number") from exc


def check_specs(specs: Sequence[str]) -> None:
    """Raise ConfigError for a spec :func:`build_scorer` would refuse, before any model is loaded."""
    for spec in specs:
        name, weight = parse_spec(spec)
        if weight <= 0:
            raise ConfigError(f"scorer spec {spec!r}: the weight must be positive")
        if name != "longreward":
            _one(name, None, None, None)


def build_scorer(specs: Sequence[str], *, judge: Judge | None = None, retriever: Retriever | None = None,
                 longreward: LongRewardConfig | None = None) -> Scorer:
    """The scorer the specs name (one scorer alone, or a :class:`MixedScorer`).

    Raises:
        ConfigError: an unknown name, a bad weight, or ``longreward`` without a judge.
    """
    parts: list[tuple[Scorer, float]] = []
    for spec in specs or ["longreward"]:
        name, weight = parse_spec(spec)
        parts.append((_one(name, judge, retriever, longreward), weight))
    if len(parts) == 1 and parts[0][1] == 1.0:
        return parts[0][0]
    return MixedScorer(parts)


def _one(name: str, judge: Judge | None, retriever: Retriever | None, config: LongRewardConfig | None) -> Scorer:
    if name == "longreward":
        if judge is None:
            raise ConfigError("the longreward scorer needs a judge model (--judge-model)")
        return LongRewardScorer(judge, retriever, config)
    if name in BUILTIN_CHECKS:
        return VerifiableScorer(name, BUILTIN_CHECKS[name])
    if name.startswith(RM_PREFIX):
        return RewardModelScorer(name[len(RM_PREFIX):])
    if ":" in name:
        return function_scorer(name)
    raise ConfigError(f"unknown scorer {name!r}; use longreward, {', '.join(BUILTIN_CHECKS)}, rm:PATH (a reward "
                      "model) or module:function")
