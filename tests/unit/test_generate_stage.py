"""The generate stage: own-history answering, follow-ups, failures as records, resume, bounded concurrency."""

from __future__ import annotations

import asyncio

import pytest

from turnwise.data.schema import Conversation
from turnwise.errors import ConfigError
from turnwise.generate.core import answer_conversation, run_generate
from turnwise.models.base import GenerationSettings
from turnwise.records import RecordStore, read_stage_output
from turnwise.stage.runner import run_bounded
from turnwise.testing.fake import FakeChatModel

GREEDY = GenerationSettings(temperature=0, max_tokens=16)


def conv(i: int, followups: list[str] | None = None) -> Conversation:
    return Conversation(f"c{i}", [{"role": "user", "content": f"q{i}"}], followups=followups or [])


async def test_followups_are_answered_with_the_models_own_history():
    fake = FakeChatModel()
    record = await answer_conversation(conv(1, ["and then?"]), fake, GREEDY)
    assert record["status"] == "ok"
    assert [m["content"] for m in record["messages"]] == ["q1", "answer to: q1", "and then?", "answer to: and then?"]
    # the second call saw the first answer in its history
    assert fake.seen[1] == record["messages"][:3]
    assert record["meta"]["cost"]["calls"] == 2


async def test_a_failed_turn_keeps_the_answered_turns_and_the_reason():
    fake = FakeChatModel(lambda m: None if m[-1]["content"] == "and then?" else "fine")
    record = await answer_conversation(conv(1, ["and then?"]), fake, GREEDY)
    assert record["status"] == "failed"
    assert record["reason"] == "turn 2: scripted failure"
    assert [m["content"] for m in record["messages"]] == ["q1", "fine", "and then?"]


async def test_empty_completion_is_a_failure_not_an_empty_turn():
    record = await answer_conversation(conv(1), FakeChatModel(lambda _: "  "), GREEDY)
    assert record["status"] == "failed" and record["reason"] == "turn 0: empty completion"


async def test_nothing_to_answer_is_filtered():
    c = Conversation("x", [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])
    record = await answer_conversation(c, FakeChatModel(), GREEDY)
    assert (record["status"], record["reason"]) == ("filtered", "ends with an assistant turn")


async def test_run_skips_finished_ids_and_writes_each_once(tmp_path):
    path = tmp_path / "out.jsonl"
    with RecordStore(path) as store:
        await run_generate([conv(i) for i in range(3)], FakeChatModel(), store, GREEDY)
    fake = FakeChatModel()
    with RecordStore(path) as store:
        result = await run_generate([conv(i) for i in range(5)], fake, store, GREEDY)
    assert result.records == 2 and [m[-1]["content"] for m in fake.seen] == ["q3", "q4"]
    assert sorted(r["id"] for r in read_stage_output(path)) == ["c0", "c1", "c2", "c3", "c4"]


async def test_duplicate_input_ids_are_refused(tmp_path):
    with RecordStore(tmp_path / "o.jsonl") as store, pytest.raises(ConfigError, match="duplicate conversation id 'c1'"):
        await run_generate([conv(1), conv(1)], FakeChatModel(), store, GREEDY)


async def test_samples_are_kept_when_n_above_one(tmp_path):
    with RecordStore(tmp_path / "o.jsonl") as store:
        await run_generate([conv(1)], FakeChatModel(), store, GenerationSettings(n=2, max_tokens=8))
    [record] = read_stage_output(tmp_path / "o.jsonl")
    assert record["samples"] == ["answer to: q1", "answer to: q1 #1"]


async def test_run_bounded_limits_in_flight_and_consumes_lazily():
    in_flight = peak = 0
    pulled = []

    def items():
        for i in range(50):
            pulled.append(i)
            yield i

    async def work(i: int) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001 * (i % 3))
        in_flight -= 1

    await run_bounded(items(), work, 8)
    assert peak == 8 and len(pulled) == 50


async def test_run_bounded_propagates_a_worker_bug():
    async def work(i: int) -> None:
        if i == 3:
            raise RuntimeError("bug")
        await asyncio.sleep(0.01)

    with pytest.raises(RuntimeError, match="bug"):
        await run_bounded(range(10), work, 4)
