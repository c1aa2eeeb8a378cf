"""Single-answer grading of every turn: the N-turn prompt, references, strict parsing, failures kept."""

from __future__ import annotations

import pytest

from turnwise.eval.answer import AnswerConfig, answer_item
from turnwise.eval.items import EvalItem
from turnwise.eval.judge import EvalJudgeConfig, grade_record
from turnwise.eval.scripted import ScriptedEvalJudge, parse_prompt
from turnwise.judge.core import Judge, RetryPolicy
from turnwise.prompts import render
from turnwise.testing.fake import FakeChatModel

TURNS = ["Name a lake in Kyoto.", "How deep is it?", "And the one next to it?"]


def judge_of(reply, attempts: int = 2) -> tuple[Judge, FakeChatModel]:
    model = FakeChatModel(reply, model="judge")
    return Judge(model, RetryPolicy(attempts=attempts)), model


async def answered(**kw) -> dict:
    item = EvalItem("d1", kw.pop("benchmark", "mt-bench"), "stem", kw.pop("turns", TURNS), kw.pop("judged", [1, 2, 3]),
                    **kw)
    return await answer_item(item, FakeChatModel(model="m"), AnswerConfig(name="m"))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_prompt_shows_the_dialogue_so_far_and_names_the_turn_to_grade(lang: str) -> None:
    text = render("eval/single", lang, turn=2, questions=TURNS[:2], answers=["Lake A.", "Ten metres."],
                  references=None, gold_history=False, focus=None)
    assert "second user question" in text if lang == "en" else "第2个用户问题" in text
    assert "Lake A." in text and "Ten metres." in text and TURNS[2] not in text
    assert "[[rating]]" in text
    assert parse_prompt(text).turn == 2 and parse_prompt(text).answers == ["Lake A.", "Ten metres."]


def test_turn_one_is_fastchats_single_prompt_and_references_are_shown() -> None:
    text = render("eval/single", "en", turn=1, questions=TURNS[:1], answers=["Lake A."], references=["Lake B."],
                  gold_history=False, focus=None)
    assert text.startswith("[Instruction]\nPlease act as an impartial judge")
    assert "[The Start of Reference Answer]\nLake B.\n[The End of Reference Answer]" in text
    assert "comparing the assistant's answer with the reference answer" in text


async def test_every_turn_is_graded_with_its_own_prompt() -> None:
    scripted = ScriptedEvalJudge(rate=lambda p: float(p.turn * 3))
    judge, model = judge_of(scripted.reply)
    record = await grade_record(await answered(references=[None, "Ten metres.", None]), judge, EvalJudgeConfig())
    assert record["status"] == "ok" and record["mode"] == "single" and record["model"] == "m"
    assert [(e["turn"], e["score"]) for e in record["scores"]] == [(1, 3.0), (2, 6.0), (3, 9.0)]
    prompts = sorted((m[-1]["content"] for m in model.seen), key=len)
    assert "Ten metres." in prompts[1] and "Reference" in prompts[1] and "Reference" not in prompts[0]
    assert record["meta"]["cost"]["calls"] == 3 and record["meta"]["lang"] == "en"


async def test_unparseable_and_out_of_range_replies_are_retried_then_kept_as_failures() -> None:
    replies = {1: "Rating: [[7]]", 2: "Rating: [[11]]", 3: "I think it is good."}
    judge, model = judge_of(lambda msgs: replies[parse_prompt(msgs[-1]["content"]).turn], attempts=3)
    record = await grade_record(await answered(), judge, EvalJudgeConfig())
    assert record["status"] == "failed"
    first, second, third = record["scores"]
    assert first["score"] == 7.0 and first["attempts"] == 1
    assert second["score"] is None and second["failure"] == "judge" and second["attempts"] == 3
    assert "outside 1–10" in second["reason"] and second["raw"] == ["Rating: [[11]]"] * 3
    assert "no [[rating]]" in third["reason"]
    assert record["reason"].startswith("turn 2: no valid verdict after 3 attempts")
    assert len(model.seen) == 7


async def test_turns_without_an_answer_are_failures_of_kind_answer() -> None:
    record = await answer_item(EvalItem("d", "turns", "x", TURNS, [1, 2, 3]),
                               FakeChatModel(lambda m: None if "deep" in m[-1]["content"] else "ok"), AnswerConfig())
    judge, model = judge_of(ScriptedEvalJudge(default=5).reply)
    judged = await grade_record(record, judge, EvalJudgeConfig())
    assert [e.get("failure") for e in judged["scores"]] == [None, "answer", "answer"]
    assert "turn 2: scripted failure" in judged["scores"][1]["reason"]
    assert len(model.seen) == 1  # nothing to grade is never sent


async def test_gold_history_shows_the_benchmarks_answers_and_the_task_focus() -> None:
    gold = ["Lake Biwa.", "About 104 metres.", "Gold three."]
    record = await answered(benchmark="mt-bench-101", history="gold", gold=gold, judged=[2, 3])
    judge, model = judge_of(ScriptedEvalJudge(default=8).reply)
    judged = await grade_record(record, judge, EvalJudgeConfig())
    assert [e["turn"] for e in judged["scores"]] == [2, 3]
    prompt = max((m[-1]["content"] for m in model.seen), key=len)
    assert "About 104 metres." in prompt and "answer to: And the one next to it?" in prompt
    assert "given history written by others" in prompt
    assert "mathematical reasoning" not in prompt  # category "stem" is not an MT-Bench-101 task


async def test_chinese_dialogues_get_the_chinese_prompt() -> None:
    record = await answered(turns=["京都有哪些湖？", "它有多深？"], judged=[1, 2])
    judge, model = judge_of(ScriptedEvalJudge(default=6).reply)
    judged = await grade_record(record, judge, EvalJudgeConfig(lang="auto"))
    assert judged["meta"]["lang"] == "zh" and all(e["score"] == 6.0 for e in judged["scores"])
    assert "请你作为公正的评审" in model.seen[0][-1]["content"]
