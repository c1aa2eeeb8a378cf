"""The judge core: templates in both languages, retries at a higher temperature, failures kept with raw text."""

from __future__ import annotations

from pathlib import Path

import pytest

from turnwise.errors import ConfigError
from turnwise.judge import Judge, RetryPolicy, ask_judge, detect_lang, parse_rating, render, resolve_lang
from turnwise.judge.scripted import TASKS, ScriptedJudge, task_of
from turnwise.testing.fake import FakeChatModel

VARIABLES = {
    "helpfulness": {"query": "Q?", "response": "R.", "history": []},
    "logicality": {"query": "Q?", "response": "R.", "history": []},
    "statements": {"query": "Q?", "response": "R."},
    "faithfulness": {"query": "Q?", "statement": "S.", "passages": ["P one.", "P two."]},
    "extract": {"query": "Q?", "chunk": "C."},
    "completeness": {"query": "Q?", "sections": [{"span": "0%–100%", "info": "I."}], "response": "R."},
}


def scripted(replies: list[str | None]) -> FakeChatModel:
    queue = list(replies)
    return FakeChatModel(lambda messages: queue.pop(0))


class SettingsSpy(FakeChatModel):
    def __init__(self, replies: list[str]):
        super().__init__(lambda m: replies.pop(0))
        self.settings = []

    async def chat(self, conversations, settings):
        self.settings.append(settings)
        return await super().chat(conversations, settings)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("task", list(VARIABLES))
def test_every_template_renders_names_its_paper_and_is_recognised(task: str, lang: str) -> None:
    text = render(f"score/{task}", lang, **VARIABLES[task])
    assert task_of(text) == task  # the scripted judge (and its tests) depend on each first line
    folder = Path(__file__).parents[2] / "src/turnwise/templates/score"
    source = (folder / f"{task}.{lang}.jinja").read_text("utf-8")
    assert "2410.21252" in source.split("-#}")[0]  # the paper is named at the top
    assert "{{" not in text and "{%" not in text
    examples = (folder / "examples" / f"{task}.{lang}.jinja").read_text("utf-8").split("-#}", 1)[1].strip()
    assert examples in text  # the few-shot examples come from their own file


def test_history_is_shown_only_when_there_is_one() -> None:
    history = [{"role": "user", "content": "Tell me about Lake Orla."}, {"role": "assistant", "content": "It is deep."}]
    with_history = render("score/helpfulness", "en", query="How deep?", response="R.", history=history)
    assert "[Conversation so far]\nuser: Tell me about Lake Orla.\nassistant: It is deep." in with_history
    assert "Conversation so far" not in render("score/helpfulness", "en", query="Q", response="R", history=[])
    assert "用户：你好" in render("score/logicality", "zh", query="Q", response="R",
                                 history=[{"role": "user", "content": "你好"}])


def test_missing_variable_and_unknown_template_raise() -> None:
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        render("score/helpfulness", "en", query="Q")
    with pytest.raises(ConfigError, match=r"no prompt template score/nope\.en\.jinja"):
        render("score/nope", "en")


def test_a_template_folder_overrides_only_what_it_holds(tmp_path: Path) -> None:
    (tmp_path / "score" / "examples").mkdir(parents=True)
    (tmp_path / "score" / "examples" / "helpfulness.en.jinja").write_text("[MY EXAMPLE]\n", encoding="utf-8")
    text = render("score/helpfulness", "en", search_path=[tmp_path], query="Q", response="R", history=[])
    assert "[MY EXAMPLE]" in text and "Which club has won" not in text
    assert "Lake Orla" in render("score/statements", "en", search_path=[tmp_path], query="Q", response="R")


def test_language_detection() -> None:
    assert detect_lang("How deep is the lake?") == "en"
    assert detect_lang("这个湖有多深？") == "zh"
    assert detect_lang("Transformer 模型的注意力机制是什么？") == "zh"  # a Chinese question naming an English term
    assert detect_lang("12345") == "en"
    assert resolve_lang("zh", "English text") == "zh"
    with pytest.raises(ConfigError):
        resolve_lang("fr", "x")


async def test_first_try_parses() -> None:
    verdict = await ask_judge(scripted(["Analysis. Rating: [[7]]"]), [{"role": "user", "content": "q"}], parse_rating)
    assert verdict.ok and verdict.value == 7.0 and verdict.attempts == 1 and verdict.cost.calls == 1


async def test_no_rating_retries_at_a_higher_temperature_then_fails_with_the_raw_text() -> None:
    model = SettingsSpy(["no rating here", "still none", "Rating: [[11]]"])
    verdict = await ask_judge(model, [{"role": "user", "content": "q"}], parse_rating, RetryPolicy(attempts=3))
    assert not verdict.ok and verdict.value is None  # never coerced to 0
    assert verdict.raw == ["no rating here", "still none", "Rating: [[11]]"]
    assert verdict.errors == ["no [[rating]] in the reply", "no [[rating]] in the reply", "rating 11 is outside 0–10"]
    assert verdict.reason == "no valid verdict after 3 attempts: rating 11 is outside 0–10"
    assert [s.temperature for s in model.settings] == [0.0, 0.8, 0.8]
    assert [s.seed for s in model.settings] == [None, 1, 2]  # distinct cache keys: a retry is a new request
    assert verdict.cost.calls == 3
    assert verdict.failure() == {"reason": verdict.reason, "attempts": 3, "raw": verdict.raw, "errors": verdict.errors}


async def test_a_retry_can_succeed_and_a_failed_call_counts_as_an_attempt() -> None:
    verdict = await ask_judge(scripted([None, "[[4]]"]), [{"role": "user", "content": "q"}], parse_rating)
    assert verdict.ok and verdict.value == 4.0
    assert verdict.raw == ["", "[[4]]"] and verdict.errors == ["call failed: scripted failure"]
    assert verdict.cost.failed == 1 and verdict.cost.calls == 2


def test_policy_needs_an_attempt() -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(attempts=0)


async def test_judge_renders_and_asks() -> None:
    sj = ScriptedJudge(ratings={"helpfulness": 9})
    judge = Judge(FakeChatModel(sj.reply), RetryPolicy(attempts=2))
    verdict = await judge.ask("score/helpfulness", parse_rating, "zh", query="问题", response="回答。", history=[])
    assert verdict.value == 9.0 and sj.calls == {"helpfulness": 1}
    assert judge.describe()["attempts"] == 2


def test_every_scripted_task_has_both_languages() -> None:
    assert set(TASKS) == set(VARIABLES)
