"""The batch RAG stage: one record per conversation, follow-ups answered in turn, failures kept, resumable."""

from __future__ import annotations

from pathlib import Path

from turnwise.data.schema import Conversation
from turnwise.rag.batch import run_rag_batch
from turnwise.rag.engine import RagEngine
from turnwise.rag.index import Found
from turnwise.rag.rewriter import Rewriter
from turnwise.records import RecordStore, read_stage_output
from turnwise.testing.fake import FakeChatModel

CHUNK = Found("nile#0", "nile", "Nile", "The Nile is about 6,650 km long.", 1.0)


class FakeIndex:
    def __init__(self) -> None:
        self.queries: list[str] = []

    def search(self, queries, k=4):
        self.queries.extend(queries)
        return [[CHUNK] for _ in queries]


def rewrite_reply(messages):
    return "Rewrite: How long is the Nile?"


def answer_or_fail(messages):
    return None if messages[-1]["content"] == "fail here" else f"answer to: {messages[-1]['content']}"


CONVERSATIONS = [
    Conversation("a", [{"role": "user", "content": "What is the Nile?"}], followups=["How long is it?"],
                 meta={"topic": "Rivers"}),
    Conversation("b", [{"role": "user", "content": "What is the Nile?"}, {"role": "assistant", "content": "A river."},
                       {"role": "user", "content": "fail here"}]),
    Conversation("c", [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]),
]


async def run(path: Path, index: FakeIndex, rewriter: FakeChatModel):
    engine = RagEngine(index, FakeChatModel(answer_or_fail), rewriter=Rewriter(rewriter))
    with RecordStore(path) as store:
        return await run_rag_batch(CONVERSATIONS, engine, store, max_in_flight=2)


async def test_records_turns_and_resume(tmp_path: Path) -> None:
    index, rewriter = FakeIndex(), FakeChatModel(rewrite_reply)
    result = await run(tmp_path / "out.jsonl", index, rewriter)
    records = {r["id"]: r for r in read_stage_output(tmp_path / "out.jsonl")}
    a = records["a"]
    assert a["status"] == "ok" and [m["role"] for m in a["messages"]] == ["user", "assistant"] * 2
    assert a["messages"][2] == {"role": "user", "content": "How long is it?"}  # the original turn, not the rewrite
    assert [t["query"] for t in a["turns"]] == ["What is the Nile?", "How long is the Nile?"]
    assert [t["chunk_ids"] for t in a["turns"]] == [["nile#0"], ["nile#0"]]
    assert a["meta"]["topic"] == "Rivers" and a["meta"]["cost"]["calls"] == 3  # two answers and one rewrite
    assert records["b"]["status"] == "failed" and records["b"]["reason"] == "turn 2: answer: scripted failure"
    assert records["b"]["turns"][0]["error"] == "answer: scripted failure"
    assert records["c"]["status"] == "filtered"
    assert result.records == 3 and result.turns == 3 and result.rewrites == {"skipped": 1, "rewritten": 2}
    # the rewriter saw the topic as context
    [prompt] = [seen[-1]["content"] for seen in rewriter.seen if seen[-1]["content"].endswith("How long is it?")]
    assert "[Topic]\nRivers" in prompt
    again = await run(tmp_path / "out.jsonl", FakeIndex(), FakeChatModel(rewrite_reply))
    assert again.records == 0
