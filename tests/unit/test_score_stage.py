"""The score stage: one record per conversation, samples scored together, resumable, costs counted."""

from __future__ import annotations

import json
from pathlib import Path

from turnwise.data.schema import Conversation
from turnwise.judge import Judge, RetryPolicy
from turnwise.judge.scripted import ScriptedJudge
from turnwise.records import RecordStore, read_stage_output
from turnwise.retrieval import Retriever
from turnwise.score import LongRewardScorer, run_score
from turnwise.testing.fake import FakeChatModel

DOC = "Lake Orla is 1,600 metres deep. Trout live in Lake Orla. " * 4


def conversations() -> list[Conversation]:
    ask = [{"role": "user", "content": "Tell me about Lake Orla."},
           {"role": "assistant", "content": "Lake Orla is 1,600 metres deep."},
           {"role": "user", "content": "What lives in it?"}]
    return [
        Conversation("a", [*ask, {"role": "assistant", "content": "Trout live in Lake Orla."}]),
        Conversation("b", ask),  # nothing to score
        Conversation("c", [{"role": "user", "content": "How deep is Lake Orla?"},
                           {"role": "assistant", "content": "Lake Orla is 1,600 metres deep."}],
                     meta={"context": DOC, "samples": ["Lake Orla is 1,600 metres deep.", "It is shallow, I think."]}),
        Conversation("d", [{"role": "user", "content": "Hi"},
                           {"role": "assistant", "content": "Hello there, friend!"}]),
    ]


def scorer(judge: ScriptedJudge) -> LongRewardScorer:
    return LongRewardScorer(Judge(FakeChatModel(judge.reply), RetryPolicy(attempts=2)), Retriever("bm25"))


async def test_records_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "scored.jsonl"
    judge = ScriptedJudge({"helpfulness": 7, "logicality": 8, "completeness": 9})
    with RecordStore(out) as store:
        totals = await run_score(conversations(), scorer(judge), store)
    records = {r["id"]: r for r in read_stage_output(out)}
    assert {k: r["status"] for k, r in records.items()} == {"a": "ok", "b": "filtered", "c": "ok", "d": "ok"}
    assert records["b"]["reason"] == "no answer to score: the conversation ends with a user turn"
    assert len(records["c"]["results"]) == 2 and "samples" not in records["c"]["meta"]
    # the context is the earlier turns, which say nothing of trout: 3 of 5 words found, partially supported
    assert records["a"]["results"][0]["scores"]["faithfulness"] == 5.0
    assert records["d"]["results"][0]["dimensions"]["faithfulness"]["status"] == "n/a"
    assert totals.responses == 4 and totals.failed == 0
    cost = totals.to_dict()
    assert cost["judge_calls"] == totals.shared.judge.calls + totals.own.judge.calls
    assert cost["per_response"]["judge_calls"] == round(cost["judge_calls"] / 4, 3)
    json.dumps(cost)
    with RecordStore(out) as store:  # a re-run skips every finished record
        again = await run_score(conversations(), scorer(judge), store)
    assert again.responses == 0 and len(read_stage_output(out)) == 4


async def test_a_failed_response_fails_the_record_with_the_raw_text(tmp_path: Path) -> None:
    out = tmp_path / "scored.jsonl"
    with RecordStore(out) as store:
        totals = await run_score(conversations()[:1], scorer(ScriptedJudge(fail={"helpfulness"})), store)
    [record] = read_stage_output(out)
    assert record["status"] == "failed" and record["reason"].startswith("response 0: helpfulness: no valid verdict")
    assert record["results"][0]["dimensions"]["helpfulness"]["details"]["raw"] == ["I cannot decide."] * 2
    assert totals.failed == 1
