"""Answering turn by turn: own history, gold history, category temperatures, failures, resume."""

from __future__ import annotations

from pathlib import Path

from turnwise.eval.answer import AnswerConfig, answer_item, run_answer
from turnwise.eval.items import EvalItem
from turnwise.models.base import GenerationSettings
from turnwise.records import RecordStore, read_stage_output
from turnwise.testing.fake import FakeChatModel


def item(id: str = "d1", category: str = "writing", history: str = "own", **kw) -> EvalItem:
    turns = kw.pop("turns", ["Plan a trip.", "Make it cheaper.", "And the second day?"])
    return EvalItem(id, "turns", category, turns, kw.pop("judged", [1, 2, 3]), history, **kw)


class Recording(FakeChatModel):
    """Also records the settings of each call."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.settings: list[GenerationSettings] = []

    async def chat(self, conversations, settings):
        self.settings.append(settings)
        return await super().chat(conversations, settings)


async def test_own_history_answers_each_turn_after_the_models_own_answers() -> None:
    model = Recording()
    record = await answer_item(item(system="Be brief."), model, AnswerConfig(name="m"))
    assert record["status"] == "ok"
    assert record["answers"] == ["answer to: Plan a trip.", "answer to: Make it cheaper.",
                                 "answer to: And the second day?"]
    last = model.seen[-1]
    assert last[0] == {"role": "system", "content": "Be brief."}
    assert last[2] == {"role": "assistant", "content": "answer to: Plan a trip."}  # its own answer, not gold
    assert record["meta"]["name"] == "m" and record["meta"]["cost"]["calls"] == 3
    assert record["turns"] == item().turns and record["judged"] == [1, 2, 3]


async def test_gold_history_answers_judged_turns_after_the_benchmarks_answers() -> None:
    model = Recording()
    gold = ["Gold one.", "Gold two.", "Gold three."]
    record = await answer_item(item(history="gold", gold=gold, judged=[2, 3]), model, AnswerConfig())
    assert record["answers"] == [None, "answer to: Make it cheaper.", "answer to: And the second day?"]
    by_length = sorted(model.seen, key=len)
    assert [m["content"] for m in by_length[0]] == ["Plan a trip.", "Gold one.", "Make it cheaper."]
    assert [m["content"] for m in by_length[1]][3] == "Gold two."
    assert record["meta"]["cost"]["calls"] == 2


async def test_category_temperatures_follow_fastchat_unless_one_is_given() -> None:
    model = Recording()
    for category in ("writing", "math", "stem", "travel"):
        await answer_item(item(category=category, turns=["q"], judged=[1]), model, AnswerConfig())
    assert [s.temperature for s in model.settings] == [0.7, 0.0, 0.1, 0.7]
    await answer_item(item(category="math", turns=["q"], judged=[1]), model, AnswerConfig(temperature=0.3))
    assert model.settings[-1].temperature == 0.3


async def test_a_failed_turn_keeps_earlier_answers_and_names_the_user_turn() -> None:
    model = FakeChatModel(lambda msgs: None if "cheaper" in msgs[-1]["content"] else "fine")
    record = await answer_item(item(), model, AnswerConfig())
    assert record["status"] == "failed"
    assert record["answers"] == ["fine", None, None]
    assert record["reason"] == "turn 2: scripted failure"


async def test_run_answer_resumes_and_skips_finished_ids(tmp_path: Path) -> None:
    out = tmp_path / "answers.jsonl"
    items = [item("a"), item("b"), item("c")]
    with RecordStore(out) as store:
        await run_answer(items[:2], FakeChatModel(), store, AnswerConfig())
    model = FakeChatModel()
    with RecordStore(out) as store:
        totals = await run_answer(items, model, store, AnswerConfig())
    assert totals.records == 1 and len(model.seen) == 3
    assert [r["id"] for r in read_stage_output(out)] == ["a", "b", "c"]
