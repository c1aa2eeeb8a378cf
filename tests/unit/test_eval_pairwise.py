"""Pairwise comparison with both orders: a position-biased judge ends in ties, a fair one in wins."""

from __future__ import annotations

import pytest

from turnwise.eval.aggregate import summarize_pairwise
from turnwise.eval.answer import AnswerConfig, answer_item
from turnwise.eval.items import EvalItem
from turnwise.eval.judge import EvalJudgeConfig
from turnwise.eval.pairwise import combine, compare_record, parse_verdict
from turnwise.eval.scripted import ScriptedEvalJudge, parse_prompt
from turnwise.judge.core import Judge, RetryPolicy
from turnwise.judge.parse import ParseError
from turnwise.prompts import render
from turnwise.testing.fake import FakeChatModel

ITEM = EvalItem("d1", "mt-bench", "writing", ["Write a haiku.", "Now about the sea."], [1, 2])


async def answers(reply, name: str) -> dict:
    return await answer_item(ITEM, FakeChatModel(reply, model=name), AnswerConfig(name=name))


def judge(prefer) -> tuple[Judge, FakeChatModel]:
    model = FakeChatModel(ScriptedEvalJudge(prefer=prefer).reply, model="judge")
    return Judge(model, RetryPolicy(attempts=1)), model


@pytest.mark.parametrize(("model_first", "baseline_first", "outcome"), [
    ("A", "B", ("model", True)),       # the model wins in both positions
    ("B", "A", ("baseline", True)),
    ("C", "C", ("tie", True)),
    ("A", "A", ("tie", False)),        # position A wins both times: position bias, a tie
    ("B", "B", ("tie", False)),
    ("A", "C", ("tie", False)),        # FastChat: anything but agreement is a tie
])
def test_combine_maps_both_orders_back_to_the_models(model_first, baseline_first, outcome) -> None:
    assert combine(model_first, baseline_first) == outcome


def test_verdicts_are_parsed_strictly() -> None:
    assert parse_verdict("A is better.\n[[A]]") == "A"
    assert parse_verdict("[[B]] no wait [[C]]") == "C"
    assert parse_verdict("[[Tie]]") == "C"
    with pytest.raises(ParseError):
        parse_verdict("Assistant A is better.")


async def test_a_judge_biased_to_the_first_position_gives_ties_after_the_swap() -> None:
    ours = await answers(lambda m: "A long, careful answer to: " + m[-1]["content"], "ours")
    theirs = await answers(lambda m: "short", "base")
    biased, model = judge("first")
    record = await compare_record(ours, theirs, biased, EvalJudgeConfig())
    assert [e["outcome"] for e in record["outcomes"]] == ["tie", "tie"]
    assert [e["consistent"] for e in record["outcomes"]] == [False, False]
    assert [e["verdicts"] for e in record["outcomes"]] == [["A", "A"], ["A", "A"]]
    shown = [parse_prompt(m[-1]["content"]) for m in model.seen]
    assert sorted(p.answers[-1] == "short" for p in shown) == [False, False, True, True]  # both orders asked
    summary = summarize_pairwise([record])
    assert summary["overall"]["win_rate"] == 0.5 and summary["inconsistent"] == 2
    assert (summary["overall"]["wins"], summary["overall"]["ties"], summary["overall"]["losses"]) == (0, 2, 0)


async def test_a_fair_judge_prefers_the_better_answer_in_both_orders() -> None:
    ours = await answers(lambda m: "A long, careful answer to: " + m[-1]["content"], "ours")
    theirs = await answers(lambda m: "short", "base")
    fair, _ = judge(None)  # the longer answer wins, wherever it stands
    record = await compare_record(ours, theirs, fair, EvalJudgeConfig())
    assert [(e["outcome"], e["consistent"]) for e in record["outcomes"]] == [("model", True)] * 2
    assert record["model"] == "ours" and record["baseline"] == "base" and record["status"] == "ok"
    assert summarize_pairwise([record])["overall"]["win_rate"] == 1.0


async def test_failures_and_missing_baselines_are_records() -> None:
    ours = await answers(lambda m: "x", "ours")
    broken = Judge(FakeChatModel(lambda m: "no verdict", model="j"), RetryPolicy(attempts=2))
    record = await compare_record(ours, ours, broken, EvalJudgeConfig())
    assert record["status"] == "failed" and all(e["failure"] == "judge" for e in record["outcomes"])
    missing = await compare_record(ours, None, broken, EvalJudgeConfig())
    assert missing["status"] == "failed" and "no answers" in missing["reason"]
    assert summarize_pairwise([record, missing])["failed"] == {"answer": 0, "judge": 2, "dialogue": 1, "total": 3}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_pairwise_prompt_shows_both_conversations_up_to_the_turn(lang: str) -> None:
    text = render("eval/pairwise", lang, turn=2, questions=ITEM.turns, answers_a=["a1", "a2"], answers_b=["b1", "b2"],
                  references=None, gold_history=False, focus=None)
    prompt = parse_prompt(text)
    assert prompt.kind == "pairwise" and prompt.answers == ["a1", "a2"] and prompt.answers_b == ["b1", "b2"]
    assert "[[A]]" in text and "[[C]]" in text
