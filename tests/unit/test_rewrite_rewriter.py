"""The rewriter: the gate saves calls, the prompt is chosen by language and variant, the reply is parsed strictly."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from turnwise.judge.parse import ParseError
from turnwise.models.base import Completion, GenerationSettings
from turnwise.rag.rewriter import RewriteConfig, Rewriter, parse_rewrite
from turnwise.testing.fake import FakeChatModel

NILE = [{"role": "user", "content": "What is the Nile?"},
        {"role": "assistant", "content": "The Nile is a river in Africa."}]


class Recording(FakeChatModel):
    """A fake that also keeps the settings of every call."""

    def __init__(self, reply):
        super().__init__(reply)
        self.settings: list[GenerationSettings] = []

    async def chat(self, conversations: Sequence[list], settings: GenerationSettings) -> list[Completion]:
        self.settings.append(settings)
        return await super().chat(conversations, settings)


def fixed(text: str | None) -> Recording:
    return Recording(lambda _messages: text)


async def test_first_turn_makes_no_call() -> None:
    model = fixed("Rewrite: anything")
    done = await Rewriter(model).rewrite([], "How long is it?")
    assert model.seen == []
    assert (done.status, done.query, done.gate.reason) == ("skipped", "How long is it?", "first turn")


async def test_a_system_message_alone_is_no_context() -> None:
    model = fixed("Rewrite: anything")
    done = await Rewriter(model).rewrite([{"role": "system", "content": "Be brief."}], "How long is it?")
    assert model.seen == [] and done.gate.reason == "first turn"


async def test_standalone_turn_makes_no_call() -> None:
    model = fixed("Rewrite: anything")
    done = await Rewriter(model).rewrite(NILE, "When was the Eiffel Tower built?")
    assert model.seen == []
    assert (done.status, done.query, done.gate.reason) == ("skipped", "When was the Eiffel Tower built?",
                                                           "standalone")


async def test_dependent_turn_is_rewritten_greedily() -> None:
    model = fixed("Reasoning: it is the Nile.\nRewrite: How long is the Nile?")
    done = await Rewriter(model).rewrite(NILE, "How long is it?")
    assert len(model.seen) == 1 and model.settings[0].temperature == 0
    assert (done.status, done.query, done.rewrite) == ("rewritten", "How long is the Nile?", "How long is the Nile?")
    assert done.gate.to_dict()["cues"] == ["personal_pronoun"] and done.cost.calls == 1
    prompt = model.seen[0][-1]["content"]
    assert prompt.rstrip().endswith("[Question]\nHow long is it?") and "Think step by step" in prompt


async def test_gate_always_calls_for_standalone_turns_but_never_for_the_first() -> None:
    model = fixed("Rewrite: When was the Eiffel Tower built?")
    rewriter = Rewriter(model, RewriteConfig(gate="always"))
    done = await rewriter.rewrite(NILE, "When was the Eiffel Tower built?")
    assert done.status == "unchanged" and len(model.seen) == 1
    await rewriter.rewrite([], "How long is it?")
    assert len(model.seen) == 1


async def test_a_topic_is_context_for_the_first_question() -> None:
    model = fixed("Rewrite: Where was Walter Scott born?")
    done = await Rewriter(model).rewrite([], "where was he born?", topic="Walter Scott — Early days")
    assert done.query == "Where was Walter Scott born?" and done.gate.reason == "dependent"
    assert "[Topic]\nWalter Scott — Early days" in model.seen[0][-1]["content"]


async def test_unparsable_reply_is_a_failure_with_the_raw_text() -> None:
    model = fixed("The Nile is about 6,650 km long.")
    done = await Rewriter(model).rewrite(NILE, "How long is it?")
    assert done.status == "failed" and done.query == "How long is it?" and done.rewrite is None
    assert done.reason == "no valid rewrite after 1 attempt: no 'Rewrite:' line in the reply"
    info = done.to_dict()
    assert info["raw"] == ["The Nile is about 6,650 km long."] and info["attempts"] == 1


async def test_failed_call_is_a_failure() -> None:
    done = await Rewriter(fixed(None)).rewrite(NILE, "How long is it?")
    assert done.status == "failed" and "call failed: scripted failure" in done.reason


async def test_retries_sample_at_a_higher_temperature() -> None:
    replies = iter(["no marker", "Rewrite: How long is the Nile?"])
    model = Recording(lambda _m: next(replies))
    done = await Rewriter(model, RewriteConfig(attempts=2)).rewrite(NILE, "How long is it?")
    assert done.status == "rewritten" and [s.temperature for s in model.settings] == [0.0, 0.8]


async def test_chinese_question_gets_the_chinese_prompt() -> None:
    model = fixed("推理：省略了主语。\n改写：《三体》好看吗")
    history = [{"role": "user", "content": "你在看什么书？"}, {"role": "assistant", "content": "我在看《三体》。"}]
    done = await Rewriter(model).rewrite(history, "好看吗")
    assert done.query == "《三体》好看吗" and done.lang == "zh"
    prompt = model.seen[0][-1]["content"]
    assert prompt.startswith("你的任务是改写") and prompt.rstrip().endswith("【问题】\n好看吗")


async def test_direct_variant_without_examples_and_a_short_history() -> None:
    model = fixed("Rewrite: How long is the Nile?")
    config = RewriteConfig(variant="direct", few_shot=False, history_messages=1)
    await Rewriter(model, config).rewrite(NILE, "How long is it?")
    prompt = model.seen[0][-1]["content"]
    assert "Reply with one line only" in prompt and "Here are some examples" not in prompt
    assert "user: What is the Nile?" not in prompt and "assistant: The Nile is a river in Africa." in prompt


@pytest.mark.parametrize(("reply", "expected"), [
    ("Rewrite: How long is the Nile?", "How long is the Nile?"),
    ("Rewrite: How long is it?\nOn second thought:\nRewrite: How long is the Nile?", "How long is the Nile?"),
    ("**Rewrite:** \"How long is the Nile?\"", "How long is the Nile?"),
    ("rewrite : How long is the Nile?  ", "How long is the Nile?"),
    ("改写：How long is the Nile?", "How long is the Nile?"),
])
def test_parse_takes_the_last_marked_line(reply: str, expected: str) -> None:
    assert parse_rewrite(reply, "How long is it?") == expected


@pytest.mark.parametrize(("reply", "reason"), [
    ("How long is the Nile?", "no 'Rewrite:' line"),
    ("Reasoning: the Rewrite: line follows\nThe Nile.", "no 'Rewrite:' line"),
    ("Rewrite:   ", "is empty"),
    ("Rewrite: <the self-contained question>", "placeholder"),
    ("Rewrite: 尼罗河有多长？", "the rewrite is in zh, the question in en"),
    ("Rewrite: Tell me how long the Nile is. " + "It is 6,650 km long and flows through eleven countries. " * 8,
     "an answer, not a rewrite"),
    ("Rewrite: How long is the Nile? How long is the Nile?", "one question, not several"),
])
def test_parse_rejects(reply: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_rewrite(reply, "How long is it?")


def test_bad_settings_are_refused() -> None:
    from turnwise.errors import ConfigError

    for bad in ({"variant": "fancy"}, {"gate": "never"}, {"lang": "fr"}, {"attempts": 0}):
        with pytest.raises(ConfigError):
            RewriteConfig(**bad)
