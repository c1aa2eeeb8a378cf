"""Verifiable scorers and mixing them with LongReward behind one interface."""

from __future__ import annotations

import pytest

from turnwise.errors import ConfigError
from turnwise.judge import Judge
from turnwise.judge.scripted import ScriptedJudge
from turnwise.retrieval import Retriever
from turnwise.score import FAILED, NA, OK, MixedScorer, ScoreInput, VerifiableScorer, build_scorer
from turnwise.score.verifiable import exact_match, last_number, normalize, normalized_match, numeric_match
from turnwise.testing.fake import FakeChatModel


def test_checks() -> None:
    assert exact_match(" Paris\n", "Paris") and not exact_match("paris", "Paris")
    assert normalize("The  Eiffel-Tower!") == "eiffel tower" and normalize("“巴黎”。") == "巴黎"
    assert normalized_match("the Paris.", "paris") and not normalized_match("Paris, France", "Paris")
    assert last_number("from 3 to 1,234.5 km") == 1234.5 and last_number("none") is None
    assert numeric_match("So the answer is 42.", "#### 42") and numeric_match("x = -3e2", "-300")
    assert not numeric_match("It is 41.", "42") and not numeric_match("no idea", "42")
    with pytest.raises(ValueError, match="holds no number"):
        numeric_match("42", "forty-two")


async def test_verifiable_scores_and_failures() -> None:
    scorer = VerifiableScorer("numeric", numeric_match)
    batch = await scorer.score(ScoreInput("q", "6 × 7?", reference="42"), ["It is 42.", "It is 41.", "?"])
    assert [r.total for r in batch.results] == [10.0, 0.0, 0.0] and batch.shared.judge.calls == 0
    [bad] = (await scorer.score(ScoreInput("q", "?", reference="n/a"), ["1"])).results
    assert bad.status == FAILED and bad.reason.startswith("numeric: ValueError: the reference")
    [none] = (await scorer.score(ScoreInput("q", "?"), ["1"])).results
    assert none.dimensions[0].status == NA and none.status == FAILED and "no reference answer" in none.reason


async def test_custom_checks_may_return_a_score_but_not_anything() -> None:
    half = VerifiableScorer("half", lambda response, reference: 5)
    eleven = VerifiableScorer("eleven", lambda response, reference: 11)
    item = ScoreInput("q", "?", reference="x")
    assert (await half.score(item, ["a"])).results[0].total == 5.0
    [result] = (await eleven.score(item, ["a"])).results
    assert result.status == FAILED and "expected True/False or a number in 0–10" in result.reason


def test_build_scorer_from_names() -> None:
    assert build_scorer(["exact"]).name == "exact"
    custom = build_scorer(["turnwise.score.verifiable:normalized_match"])
    assert custom.name == "normalized_match"
    with pytest.raises(ConfigError, match="needs a judge"):
        build_scorer(["longreward"])
    with pytest.raises(ConfigError, match="unknown scorer"):
        build_scorer(["bleu"])
    with pytest.raises(ConfigError, match="must be a number"):
        build_scorer(["exact=heavy"])
    with pytest.raises(ConfigError, match="cannot load"):
        build_scorer(["turnwise.score.verifiable:nope"])
    with pytest.raises(ConfigError, match="same dimension twice"):
        build_scorer(["exact", "exact=2"])


async def test_mixed_total_weighs_each_scorer_not_each_dimension() -> None:
    """LongReward's total 8.5 (helpfulness 8, logicality 9, no context) and numeric 10 with weight 2:
    (1 × 8.5 + 2 × 10) / 3 = 9.5."""
    judge = Judge(FakeChatModel(ScriptedJudge({"helpfulness": 8, "logicality": 9}).reply))
    scorer = build_scorer(["longreward", "numeric=2"], judge=judge, retriever=Retriever("bm25"))
    assert isinstance(scorer, MixedScorer) and scorer.dimensions == (
        "helpfulness", "logicality", "faithfulness", "completeness", "numeric")
    [result] = (await scorer.score(ScoreInput("q", "6 × 7?", reference="42"), ["It is 42."])).results
    assert result.status == OK and result.total == pytest.approx(9.5)
    assert result.scores() == {"helpfulness": 8.0, "logicality": 9.0, "faithfulness": None, "completeness": None,
                               "numeric": 10.0, "total": pytest.approx(9.5)}
    assert scorer.describe()["parts"][1] == {"name": "numeric", "check": "turnwise.score.verifiable:numeric_match",
                                             "weight": 2.0}
