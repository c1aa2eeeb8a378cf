"""Each CaPO strategy shows the negative writer exactly the context it claims to (a fake model records it)."""

from __future__ import annotations

import random

import pytest

from turnwise.capo.stage import history_pool
from turnwise.capo.strategies import (
    CapoModels,
    StrategyEnv,
    borrow_history,
    parse_history,
    shuffled_history,
    write_negative,
)
from turnwise.capo.tasks import PairTask
from turnwise.data.schema import Conversation
from turnwise.detect.rules import TurnDecision
from turnwise.errors import SchemaError
from turnwise.models.base import GenerationSettings
from turnwise.testing.fake import FakeChatModel

SETTINGS = GenerationSettings(temperature=0.7, max_tokens=32)
SYSTEM = {"role": "system", "content": "You are helpful."}
TRUE_HISTORY = [
    {"role": "user", "content": "Tell me about the Nile."},
    {"role": "assistant", "content": "The Nile is a river in Africa."},
    {"role": "user", "content": "And the Amazon?"},
    {"role": "assistant", "content": "The Amazon is in South America."},
    {"role": "user", "content": "Which one is longer?"},
    {"role": "assistant", "content": "The Nile, by a little."},
]
QUERY = {"role": "user", "content": "How long is it?"}
OTHER = Conversation("other", [
    {"role": "user", "content": "Recommend a book about whales."},
    {"role": "assistant", "content": "Moby-Dick."},
    {"role": "user", "content": "Who wrote it?"},
    {"role": "assistant", "content": "Herman Melville."},
])


def make_task(history=TRUE_HISTORY, *, system=None, lang="en", query=QUERY) -> PairTask:
    prompt = ([system] if system else []) + list(history) + [query]
    decision = TurnDecision(len(prompt) - 1, True, 0.9, [{"cue": "personal_pronoun", "text": "it", "weight": 2.5}])
    return PairTask("dlg", len(prompt) - 1, tuple(prompt), "About 6,650 km.", decision, lang)


def make_env(model, mode: dict[str, str], *, simulator=None, pool=None) -> StrategyEnv:
    modes = {"neglect": "plain", "hallucination": "simulator", "misunderstanding": "shuffle", **mode}
    views = {"en": [{"role": "system", "content": "You are a curious user."},
                    {"role": "user", "content": "Start the conversation."}]}
    return StrategyEnv(CapoModels(model, simulator=simulator), modes, SETTINGS, SETTINGS,
                       pool=history_pool([OTHER]) if pool is None else pool, seed=0, simulator_views=views)


def saw_true_history(seen) -> bool:
    return any(m in conv for conv in seen for m in TRUE_HISTORY)


async def test_neglect_sees_only_the_last_user_turn():
    model = FakeChatModel()
    negative = await write_negative("neglect", make_task(), make_env(model, {}))
    assert model.seen == [[QUERY]]
    assert negative.text == "answer to: How long is it?"
    assert (negative.status, negative.mode, negative.cost.calls) == ("ok", "plain", 1)


async def test_neglect_keeps_the_system_message_only():
    model = FakeChatModel()
    await write_negative("neglect", make_task(system=SYSTEM), make_env(model, {}))
    assert model.seen == [[SYSTEM, QUERY]]


async def test_neglect_prompted_wraps_the_turn_alone_in_an_instruction():
    model = FakeChatModel()
    negative = await write_negative("neglect", make_task(), make_env(model, {"neglect": "prompted"}))
    [[message]] = model.seen
    assert message["role"] == "user" and message["content"].endswith("How long is it?")
    assert "Do not ask what it refers to" in message["content"]
    assert negative.template == "capo/neglect.en.jinja"


async def test_hallucination_answers_after_a_history_sampled_from_the_simulator():
    writer, simulator = FakeChatModel(), FakeChatModel(lambda conv: "What is the tallest tower?")
    negative = await write_negative("hallucination", make_task(), make_env(writer, {}, simulator=simulator))
    opening = {"role": "user", "content": "What is the tallest tower?"}
    answer = {"role": "assistant", "content": "answer to: What is the tallest tower?"}
    assert simulator.seen == [[{"role": "system", "content": "You are a curious user."},
                               {"role": "user", "content": "Start the conversation."}]]
    assert writer.seen == [[opening], [opening, answer, QUERY]]
    assert negative.context == {"invented_history": [opening, answer]}
    assert not saw_true_history(writer.seen + simulator.seen)


async def test_hallucination_prompted_invents_then_answers_with_the_invention():
    invented = "User: Tell me about the Eiffel Tower.\nAssistant: It is in Paris.\nIt is 330 m tall."

    def reply(conv):
        return invented if "Invent a short" in conv[-1]["content"] else "It is 330 metres."

    model = FakeChatModel(reply)
    negative = await write_negative("hallucination", make_task(), make_env(model, {"hallucination": "prompted"}))
    assert "How long is it?" in model.seen[0][0]["content"]
    assert model.seen[1] == [{"role": "user", "content": "Tell me about the Eiffel Tower."},
                             {"role": "assistant", "content": "It is in Paris.\nIt is 330 m tall."}, QUERY]
    assert negative.text == "It is 330 metres."
    assert not saw_true_history(model.seen)


async def test_an_unparsable_invented_history_is_a_failure_with_the_raw_text():
    model = FakeChatModel(lambda conv: "Sure! Here is a conversation about rivers.")
    negative = await write_negative("hallucination", make_task(), make_env(model, {"hallucination": "prompted"}))
    assert negative.status == "failed" and negative.text is None
    assert negative.reason.startswith("invented history unparsable")
    assert negative.raw == "Sure! Here is a conversation about rivers."
    assert len(model.seen) == 1


async def test_misunderstanding_shuffle_drops_the_last_exchange_and_shuffles_the_rest():
    model = FakeChatModel()
    negative = await write_negative("misunderstanding", make_task(), make_env(model, {}))
    [seen] = model.seen
    assert seen[-1] == QUERY
    assert sorted(map(str, seen[:-1])) == sorted(map(str, TRUE_HISTORY[:4]))
    assert seen[:-1] != TRUE_HISTORY  # never the true history
    assert TRUE_HISTORY[4] not in seen and TRUE_HISTORY[5] not in seen
    assert negative.context["history"] == "shuffled subset"


async def test_misunderstanding_other_answers_with_another_dialogues_history():
    model = FakeChatModel()
    negative = await write_negative("misunderstanding", make_task(), make_env(model, {"misunderstanding": "other"}))
    assert model.seen == [[*OTHER.messages, QUERY]]
    assert not saw_true_history(model.seen)
    assert negative.context == {"history": "other dialogue", "other_id": "other"}


async def test_shuffle_falls_back_to_another_dialogue_with_one_exchange_before_the_turn():
    model = FakeChatModel()
    negative = await write_negative("misunderstanding", make_task(TRUE_HISTORY[:2]), make_env(model, {}))
    assert model.seen == [[*OTHER.messages[:2], QUERY]]  # cut to as many exchanges as the true history
    assert negative.mode == "other"


async def test_misunderstanding_without_any_other_dialogue_is_filtered():
    model = FakeChatModel()
    env = make_env(model, {"misunderstanding": "other"}, pool=[])
    negative = await write_negative("misunderstanding", make_task(), env)
    assert (negative.status, negative.reason, model.seen) == (
        "filtered", "no other dialogue to borrow a history from", [])


async def test_misunderstanding_prompted_points_the_turn_at_the_wrong_referent():
    model = FakeChatModel()
    await write_negative("misunderstanding", make_task(lang="zh"), make_env(model, {"misunderstanding": "prompted"}))
    [[message]] = model.seen
    assert "[assistant] The Nile, by a little." in message["content"]
    assert "误解它所指的对象" in message["content"]


async def test_a_failed_call_is_a_failed_negative():
    model = FakeChatModel(lambda conv: None)
    negative = await write_negative("neglect", make_task(), make_env(model, {}))
    assert (negative.status, negative.reason, negative.cost.failed) == ("failed", "call failed: scripted failure", 1)


def test_parse_history_is_strict():
    assert parse_history("User: hi\nAssistant: hello") == [{"role": "user", "content": "hi"},
                                                            {"role": "assistant", "content": "hello"}]
    for bad in ("hello", "Assistant: hi", "User: a\nUser: b\nAssistant: c", "User: only a question",
                "User: a\nAssistant: b\n" * 4):
        with pytest.raises(SchemaError):
            parse_history(bad)


def test_shuffle_and_borrow_helpers():
    rng = random.Random(0)
    assert shuffled_history(TRUE_HISTORY[:2], rng) is None
    task = make_task()
    assert borrow_history(task, [("dlg", TRUE_HISTORY)], rng) is None  # its own dialogue is never borrowed


@pytest.mark.parametrize("name", ["neglect", "hallucination", "misunderstanding"])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_template_names_the_paper_and_renders(name, lang):
    from pathlib import Path

    from turnwise.prompts import render

    path = Path(__file__).resolve().parents[2] / "src" / "turnwise" / "templates" / "capo" / f"{name}.{lang}.jinja"
    assert "2310.07301" in "".join(path.read_text(encoding="utf-8").splitlines()[:3])
    text = render(f"capo/{name}", lang, query="它多高？", history=TRUE_HISTORY, exchanges=1)
    assert "它多高？" in text and "{{" not in text and "2310.07301" not in text  # the comment is not rendered
