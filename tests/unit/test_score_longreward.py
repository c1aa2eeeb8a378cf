"""LongReward with a scripted judge: hand-computed scores, shared work done once, failures kept as data.

The fixed example: a context of four facts and an answer of four factual sentences. The scripted judge
rates helpfulness 8, logicality 9 and completeness 6, and judges the statements fully (1), partially
(0.5), not (0) and fully (1) supported, so

    faithfulness = (1 + 0.5 + 0 + 1) / 4 × 10 = 6.25
    total        = (8 + 9 + 6.25 + 6) / 4      = 7.3125

Turning the third verdict into "Fully supported" adds 1/4 × 10 = 2.5 to faithfulness (8.75) and
2.5 / 4 = 0.625 to the total (7.9375).
"""

from __future__ import annotations

import asyncio

import pytest

from turnwise.judge import Judge, RetryPolicy
from turnwise.judge.scripted import ScriptedJudge, task_of
from turnwise.retrieval import Retriever, chunk_text
from turnwise.score import FAILED, NA, OK, LongRewardConfig, LongRewardScorer, ScoreInput
from turnwise.testing.fake import FakeChatModel

CONTEXT = ("Lake Orla is 1,600 metres deep. It lies in the Selva basin. Trout are the most common fish in Lake Orla. "
           "The town of Brin stands on its northern shore. ") * 3
QUERY = "What does the document say about Lake Orla?"
S1, S2, S3, S4 = ("Lake Orla is 1,600 metres deep.", "Lake Orla lies in the Selva basin and is salty.",
                  "Lake Orla has no fish at all.", "The town of Brin stands on the shore of Lake Orla.")
ANSWER = " ".join((S1, S2, S3, S4))
RATINGS = {"helpfulness": 8, "logicality": 9, "completeness": 6}
VERDICTS = {S1: "Fully supported", S2: "Partially supported", S3: "No support", S4: "Fully supported"}


def scorer_for(judge: ScriptedJudge, **config) -> tuple[LongRewardScorer, FakeChatModel]:
    model = FakeChatModel(judge.reply)
    scorer = LongRewardScorer(Judge(model, RetryPolicy(attempts=2)), Retriever("bm25", chunk_tokens=16),
                              LongRewardConfig(extract_chunk_tokens=32, **config))
    return scorer, model


async def score_one(judge: ScriptedJudge, answer: str = ANSWER, item: ScoreInput | None = None, **config):
    scorer, model = scorer_for(judge, **config)
    batch = await scorer.score(item or ScoreInput("x", QUERY, context=CONTEXT), [answer])
    return batch, model


async def test_fixed_example_matches_hand_computed_scores() -> None:
    batch, model = await score_one(ScriptedJudge(RATINGS, VERDICTS))
    [result] = batch.results
    assert result.status == OK
    assert result.scores() == {"helpfulness": 8.0, "logicality": 9.0, "faithfulness": 6.25, "completeness": 6.0,
                               "total": 7.3125}
    statements = result.dimensions[2].details["statements"]
    assert [(s["text"], s["support"]) for s in statements] == [(S1, 1.0), (S2, 0.5), (S3, 0.0), (S4, 1.0)]
    assert all(len(s["chunks"]) == 5 and s["chunks"] == sorted(s["chunks"]) for s in statements)
    # own calls: helpfulness, logicality, statements, 4 support verdicts, completeness; shared: key points
    assert result.cost.judge.calls == 8
    assert batch.shared.judge.calls == model_calls(model, "extract") == len(chunk_text(CONTEXT, 32)) == 4
    assert len(model.seen) == 8 + 4


def model_calls(model: FakeChatModel, task: str) -> int:
    return sum(task_of(m[-1]["content"]) == task for m in model.seen)


async def test_changing_one_verdict_moves_faithfulness_by_a_quarter_of_ten() -> None:
    before, _ = await score_one(ScriptedJudge(RATINGS, VERDICTS))
    after, _ = await score_one(ScriptedJudge(RATINGS, {**VERDICTS, S3: "Fully supported"}))
    assert after.results[0].scores()["faithfulness"] - before.results[0].scores()["faithfulness"] == 2.5
    assert after.results[0].total == 7.9375 and after.results[0].total - before.results[0].total == 0.625


async def test_an_answer_without_statements_is_recorded_as_such() -> None:
    batch, _ = await score_one(ScriptedJudge(RATINGS, VERDICTS), answer="Thanks!")
    [result] = batch.results
    faith = result.dimensions[2]
    assert (faith.status, faith.score, faith.reason) == (NA, None, "no factual statements")
    assert faith.details["statements"] == [] and "No factual statements" in faith.details["analysis"]
    assert result.status == OK and result.total == pytest.approx((8 + 9 + 6) / 3)


async def test_statement_extraction_failure_fails_the_response_with_raw_replies() -> None:
    batch, _ = await score_one(ScriptedJudge(RATINGS, VERDICTS, fail={"statements"}))
    [result] = batch.results
    faith = result.dimensions[2]
    assert faith.status == FAILED and faith.score is None
    assert faith.details["raw"] == ["I cannot decide.", "I cannot decide."] and faith.details["attempts"] == 2
    assert result.status == FAILED and result.total is None
    assert result.reason.startswith("faithfulness: no valid verdict after 2 attempts: no <statement>")
    assert result.scores()["helpfulness"] == 8.0  # the other dimensions are kept


async def test_one_unparseable_support_verdict_fails_faithfulness() -> None:
    batch, _ = await score_one(ScriptedJudge(RATINGS, {**VERDICTS, S2: "Mostly supported"}))
    faith = batch.results[0].dimensions[2]
    assert faith.status == FAILED and faith.reason.startswith("1 of 4 statements got no valid verdict")
    bad = faith.details["statements"][1]
    assert bad["verdict"] is None and bad["raw"][0].endswith("[[Mostly supported]]")


async def test_out_of_range_rating_fails_only_that_dimension() -> None:
    batch, _ = await score_one(ScriptedJudge({**RATINGS, "logicality": 11}, VERDICTS))
    logic = batch.results[0].dimensions[1]
    assert logic.status == FAILED and logic.reason.endswith("rating 11 is outside 0–10")
    assert logic.details["raw"] == ["Analysis: scripted logicality judgement.\n\nRating: [[11]]"] * 2


async def test_key_points_are_extracted_once_for_all_candidates() -> None:
    judge = ScriptedJudge(RATINGS, VERDICTS)
    scorer, model = scorer_for(judge)
    item = ScoreInput("x", QUERY, context=CONTEXT)
    first = await scorer.score(item, [ANSWER, S1, "Thanks!"])
    extracted = model_calls(model, "extract")
    assert extracted == first.shared.judge.calls > 0
    again = await scorer.score(item, [S4])
    assert model_calls(model, "extract") == extracted and again.shared.judge.calls == 0


async def test_key_point_failure_fails_completeness_of_every_candidate() -> None:
    scorer, _ = scorer_for(ScriptedJudge(RATINGS, VERDICTS, fail={"extract": " "}))  # an empty reply
    batch = await scorer.score(ScoreInput("x", QUERY, context=CONTEXT), [ANSWER, S1])
    for result in batch.results:
        completeness = result.dimensions[3]
        assert completeness.status == FAILED and completeness.reason.startswith("key points of 4 of 4 context chunks")
        assert completeness.details["key_points"][0]["raw"] == [" ", " "]
        assert result.status == FAILED and result.scores()["helpfulness"] == 8.0


async def test_dialogue_context_is_the_history() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Tell me about Lake Orla."},
        {"role": "assistant", "content": "Lake Orla is 1,600 metres deep and full of trout."},
        {"role": "user", "content": "How deep is it?"},
    ]
    item = ScoreInput.from_prompt("d1", messages)
    assert item.query == "How deep is it?" and len(item.history) == 2
    assert item.context == ("user: Tell me about Lake Orla.\n\n"
                            "assistant: Lake Orla is 1,600 metres deep and full of trout.")
    batch, model = await score_one(ScriptedJudge(RATINGS), answer="Lake Orla is 1,600 metres deep.", item=item)
    assert batch.results[0].scores()["faithfulness"] == 10.0  # supported by the earlier turn
    helpfulness_prompt = next(m[-1]["content"] for m in model.seen if task_of(m[-1]["content"]) == "helpfulness")
    assert "[Conversation so far]\nuser: Tell me about Lake Orla." in helpfulness_prompt


async def test_without_context_only_the_judge_only_dimensions_count() -> None:
    batch, _ = await score_one(ScriptedJudge(RATINGS), item=ScoreInput("q", "What is a lake?"))
    [result] = batch.results
    assert [d.status for d in result.dimensions] == [OK, OK, NA, NA] and result.total == 8.5


async def test_document_split_from_meta() -> None:
    item = ScoreInput.from_prompt("d", [{"role": "user", "content": CONTEXT + "\n\n" + QUERY}],
                                  {"context": CONTEXT, "query": QUERY, "reference": 1600})
    assert (item.context, item.query, item.reference, item.history) == (CONTEXT, QUERY, "1600", [])


async def test_chinese_question_uses_chinese_prompts() -> None:
    item = ScoreInput("zh", "奥拉湖有多深？", context="奥拉湖深一千六百米。湖里有很多鳟鱼。" * 5)
    batch, model = await score_one(ScriptedJudge(RATINGS), answer="奥拉湖深一千六百米，是很深的湖。", item=item)
    assert batch.results[0].status == OK
    assert all("[问题]" in m[-1]["content"] for m in model.seen)


class InFlight(FakeChatModel):
    """Counts judge calls in flight per task, to show what runs in parallel."""

    def __init__(self, judge: ScriptedJudge):
        super().__init__(judge.reply)
        self.now: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    async def chat(self, conversations, settings):
        task = task_of(conversations[0][-1]["content"]) or "?"
        self.now[task] = self.now.get(task, 0) + 1
        self.peak[task] = max(self.peak.get(task, 0), self.now[task])
        await asyncio.sleep(0.01)
        try:
            return await super().chat(conversations, settings)
        finally:
            self.now[task] -= 1


async def test_statements_and_responses_are_judged_concurrently() -> None:
    model = InFlight(ScriptedJudge(RATINGS, VERDICTS))
    config = LongRewardConfig(extract_chunk_tokens=32)
    scorer = LongRewardScorer(Judge(model), Retriever("bm25", chunk_tokens=16), config)
    await scorer.score(ScoreInput("x", QUERY, context=CONTEXT), [ANSWER, ANSWER + " Bye.", S1])
    assert model.peak["faithfulness"] >= 8  # the 4 statements of two answers at once
    assert model.peak["helpfulness"] == 3  # the three answers at once
    assert model.peak["extract"] > 1  # the key-point chunks at once
