"""Scores for responses: LongReward's four AI-feedback dimensions and verifiable checks, one interface.

    from turnwise.score import LongRewardScorer, ScoreInput, build_scorer

    scorer = build_scorer(["longreward"], judge=Judge(judge_model), retriever=Retriever())
    batch = await scorer.score(ScoreInput.from_prompt("q1", prompt, meta), ["answer A", "answer B"])
    batch.results[0].scores()     # {"helpfulness": 8.0, ..., "total": 7.3}

See ``docs/rewards.md``.
"""

from turnwise.score.completeness import NO_INFO, KeyPoints, extract_points
from turnwise.score.faithfulness import NO_STATEMENTS, SUPPORT
from turnwise.score.longreward import DIMENSIONS, LongRewardConfig, LongRewardScorer
from turnwise.score.mix import MixedScorer, build_scorer
from turnwise.score.stage import ScoringTotals, run_score
from turnwise.score.types import (
    FAILED,
    NA,
    OK,
    DimensionScore,
    ScoreBatch,
    ScoreCost,
    ScoreInput,
    Scorer,
    ScoreResult,
)
from turnwise.score.verifiable import (
    VerifiableScorer,
    exact_match,
    function_scorer,
    normalized_match,
    numeric_match,
)

__all__ = [
    "DIMENSIONS",
    "FAILED",
    "NA",
    "NO_INFO",
    "NO_STATEMENTS",
    "OK",
    "SUPPORT",
    "DimensionScore",
    "KeyPoints",
    "LongRewardConfig",
    "LongRewardScorer",
    "MixedScorer",
    "ScoreBatch",
    "ScoreCost",
    "ScoreInput",
    "ScoreResult",
    "Scorer",
    "ScoringTotals",
    "VerifiableScorer",
    "build_scorer",
    "exact_match",
    "extract_points",
    "function_scorer",
    "normalized_match",
    "numeric_match",
    "run_score",
]
