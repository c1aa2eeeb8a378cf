"""The simulate stage core with scripted fake models: the flip, filters, regeneration, early ends, seeds."""

from __future__ import annotations

import asyncio
import json

import pytest

from turnwise.errors import ConfigError
from turnwise.models.base import GenerationSettings
from turnwise.records import RecordStore, read_stage_output
from turnwise.simulate.engine import SimulateConfig, run_simulate, simulate_dialogue, stable_seed
from turnwise.simulate.filters import FilterConfig
from turnwise.simulate.seeds import Seed
from turnwise.testing.fake import FakeChatModel

SHORT = {"user_system": "S", "opener": "O"}


class Recorder:
    """Wraps a ChatModel and keeps (messages, settings) of every call."""

    def __init__(self, inner, backend: str | None = None):
        self.inner, self.backend, self.model = inner, backend or inner.backend, inner.model
        self.calls: list[tuple[list[dict], GenerationSettings]] = []

    async def chat(self, conversations, settings):
        self.calls += [(list(c), settings) for c in conversations]
        return await self.inner.chat(conversations, settings)

    async def aclose(self):
        return None


def asker(messages):
    """A user simulator that asks a new question each turn: it counts the answers it has seen."""
    answers = sum(1 for m in messages if m["role"] == "user") - 1  # the first user message is the opener
    return f"Why is answer {answers} like that?"


def config(**kw) -> SimulateConfig:
    return SimulateConfig(**{"turns": 3, "max_regenerations": 2, **SHORT, **kw})


async def test_three_turns_with_the_flipped_view():
    user, assistant = Recorder(FakeChatModel(asker)), Recorder(FakeChatModel())
    record = await simulate_dialogue(Seed("s1", "What is a cache?"), user, assistant, config())
    assert record["status"] == "ok" and record["id"] == "s1"
    assert [m["content"] for m in record["messages"]] == [
        "What is a cache?", "answer to: What is a cache?",
        "Why is answer 1 like that?", "answer to: Why is answer 1 like that?",
        "Why is answer 2 like that?", "answer to: Why is answer 2 like that?",
    ]
    # The user model's second call: system, opener, then the dialogue with the roles flipped.
    assert user.calls[1][0] == [
        {"role": "system", "content": "S"}, {"role": "user", "content": "O"},
        {"role": "assistant", "content": "What is a cache?"},
        {"role": "user", "content": "answer to: What is a cache?"},
        {"role": "assistant", "content": "Why is answer 1 like that?"},
        {"role": "user", "content": "answer to: Why is answer 1 like that?"},
    ]
    meta = record["meta"]
    assert meta["turns"] == 3 and meta["finished_by"] == "turns" and meta["filters"] == {}
    assert meta["cost"]["user"]["calls"] == 2 and meta["cost"]["assistant"]["calls"] == 3
    assert meta["models"] == {"user": "fake:fake", "assistant": "fake:fake"}
    assert meta["seed"] == stable_seed(0, "s1")


async def test_a_filtered_turn_is_regenerated_with_a_new_seed():
    replies = iter(["What is a cache?", "User: why?", "Why is it fast?"])  # repeated, role label, good
    user = Recorder(FakeChatModel(lambda m: next(replies)))
    record = await simulate_dialogue(Seed("s", "What is a cache?"), user, FakeChatModel(), config(turns=2))
    assert record["status"] == "ok" and record["messages"][2]["content"] == "Why is it fast?"
    assert record["meta"]["filters"] == {"repeated": 1, "role_label": 1}
    seeds = [settings.seed for _, settings in user.calls]
    assert len(set(seeds)) == 3  # each attempt has its own cache key


def no_why(text, messages):
    """A user-turn filter of one's own: no "why" questions (and it sees the dialogue so far)."""
    assert messages[0]["content"] == "What is a cache?" and messages[-1]["role"] == "assistant"
    return "why_question" if text.startswith("Why") else None


async def test_a_filter_of_ones_own_rejects_a_turn_with_its_reason():
    replies = iter(["Why is it fast?", "How big is it?"])
    user = Recorder(FakeChatModel(lambda m: next(replies)))
    cfg = config(turns=2, filters=FilterConfig(check=f"{__name__}:no_why"))
    record = await simulate_dialogue(Seed("s", "What is a cache?"), user, FakeChatModel(), cfg)
    assert record["messages"][2]["content"] == "How big is it?" and record["meta"]["filters"] == {"why_question": 1}
    with pytest.raises(ConfigError, match="user-turn filter"):
        await simulate_dialogue(Seed("s", "Q?"), user, FakeChatModel(),
                                config(filters=FilterConfig(check="no_such_module:f")))


async def test_regenerations_spent_end_the_dialogue_kept_or_filtered():
    def user(messages):
        return "ok" if len(messages) > 4 else "And the second one?"  # turn 2 is always too short

    kept = await simulate_dialogue(Seed("s", "Q?"), FakeChatModel(user), FakeChatModel(), config(turns=4))
    assert kept["status"] == "ok" and kept["meta"]["turns"] == 2
    assert kept["meta"]["finished_by"] == "filter" and kept["meta"]["end_reason"] == "turn 2: too_short"
    assert kept["meta"]["filters"] == {"too_short": 3}  # the first try and 2 regenerations

    strict = config(turns=4, min_turns=3)
    dropped = await simulate_dialogue(Seed("s", "Q?"), FakeChatModel(user), FakeChatModel(), strict)
    assert dropped["status"] == "filtered"
    assert dropped["reason"] == "2 turns < min_turns 3 (turn 2: too_short)"


async def test_end_marker_ends_the_dialogue_as_the_users_choice():
    def user(messages):
        return "Thanks, that is all. [END]" if len(messages) > 4 else "And then?"

    record = await simulate_dialogue(Seed("s", "Q?"), FakeChatModel(user), FakeChatModel(),
                                     config(turns=5, end_marker="[END]"))
    assert record["status"] == "ok" and record["meta"]["finished_by"] == "user" and record["meta"]["turns"] == 2
    assert record["messages"][-1]["role"] == "assistant"


async def test_failures_become_failed_records_with_the_reason():
    broken_assistant = FakeChatModel(lambda m: None if len(m) > 2 else "fine")
    record = await simulate_dialogue(Seed("s", "Q?"), FakeChatModel(asker), broken_assistant, config())
    assert record["status"] == "failed" and record["reason"] == "turn 1: assistant: scripted failure"
    assert record["messages"][-1] == {"role": "user", "content": "Why is answer 1 like that?"}  # kept, unanswered

    silent_user = FakeChatModel(lambda m: None)
    record = await simulate_dialogue(Seed("s", "Q?"), silent_user, FakeChatModel(), config())
    assert record["status"] == "failed" and record["reason"] == "turn 1: user simulator: scripted failure"
    assert record["meta"]["filters"] == {"failed": 3}


async def test_seed_scope_dialogue_for_servers_and_attempt_for_in_process_backends():
    seeds = [Seed("a", "Q a?"), Seed("b", "Q b?")]

    async def user_seeds(backend: str, **kw) -> dict[str, list[int]]:
        found = {}
        for seed in seeds:
            user = Recorder(FakeChatModel(asker), backend=backend)
            await simulate_dialogue(seed, user, FakeChatModel(), config(**kw))
            found[seed.id] = [s.seed for _, s in user.calls]
        return found

    api = await user_seeds("openai")
    assert api["a"] != api["b"] and len(set(api["a"])) == 2  # per dialogue and turn
    assert api == await user_seeds("openai")  # stable across runs
    local = await user_seeds("local")
    assert local["a"] == local["b"] and len(set(local["a"])) == 1  # shared, so calls batch together
    assert await user_seeds("local", seed_scope="dialogue") == api
    assert (await user_seeds("openai", seed=1))["a"] != api["a"]


async def test_chinese_seed_gets_the_chinese_prompt_and_language_filter():
    user = Recorder(FakeChatModel(lambda m: "Why is that?"))
    cfg = SimulateConfig(turns=2, min_turns=1, max_regenerations=0)
    record = await simulate_dialogue(Seed("z", "缓存是什么？"), user, FakeChatModel(), cfg)
    assert record["meta"]["lang"] == "zh" and "用户" in user.calls[0][0][0]["content"]
    assert record["meta"]["filters"] == {"language": 1} and record["meta"]["turns"] == 1


async def test_run_writes_every_seed_once_and_resumes(tmp_path):
    seeds = [Seed(f"s{i}", f"Question {i}?") for i in range(20)]
    path = tmp_path / "out.jsonl"
    with RecordStore(path) as store:
        result = await run_simulate(seeds[:12], FakeChatModel(asker), FakeChatModel(), store, config())
    assert result.status["ok"] == 12 and result.user_cost.calls == 24 and result.assistant_cost.calls == 36
    with RecordStore(path) as store:
        result = await run_simulate(seeds, FakeChatModel(asker), FakeChatModel(), store, config())
    assert result.dialogues == 8
    ids = [r["id"] for r in read_stage_output(path)]
    assert sorted(ids) == sorted(s.id for s in seeds)
    with RecordStore(path) as store, pytest.raises(ConfigError, match="duplicate seed id"):
        await run_simulate([seeds[0], seeds[0]], FakeChatModel(), FakeChatModel(), store, config())


async def test_fast_dialogues_do_not_wait_for_slow_ones(tmp_path):
    class SlowForOne(FakeChatModel):
        async def chat(self, conversations, settings):
            if "slow" in json.dumps(conversations):
                await asyncio.sleep(0.3)
            return await super().chat(conversations, settings)

    seeds = [Seed("slow", "A slow question?")] + [Seed(f"f{i}", f"Fast question {i}?") for i in range(5)]
    order = []
    with RecordStore(tmp_path / "out.jsonl") as store:
        await run_simulate(seeds, FakeChatModel(asker), SlowForOne(), store, config(),
                           on_record=lambda r: order.append(r["id"]))
    assert order[-1] == "slow" and len(order) == 6


def test_config_checks():
    with pytest.raises(ConfigError):
        SimulateConfig(turns=2, min_turns=3)
    with pytest.raises(ConfigError):
        SimulateConfig(mode="chat")
    with pytest.raises(ConfigError, match="n = 1"):
        SimulateConfig(user_settings=GenerationSettings(n=2))
    data = SimulateConfig(filters=FilterConfig(sensitive_terms=["x"])).to_dict()
    assert data["filters"]["sensitive_terms"] == ["x"] and "_prompts" not in data
    json.dumps(data)
