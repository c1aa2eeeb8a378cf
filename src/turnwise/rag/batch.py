"""The batch RAG stage: answer each conversation's last user turn, then each follow-up, through the engine.

    turnwise rag batch conversations.jsonl answers.jsonl --index runs/index --model M

One record per conversation: ``{id, status, messages, turns, meta}``. ``messages`` are the conversation
with the engine's answers appended (the original turns, never the rewrites); ``turns`` holds one log per
answered turn (:meth:`TurnResult.to_log`: the query searched, the chunk ids, the rewrite with its status and
raw reply, the trimming, the cost). A rewrite that fails is not a failed record: the turn searches with
the question as asked, and the failure stays in the turn's log and in the manifest's counts. A failed
answer is a ``failed`` record that keeps the turns answered so far. A conversation's ``meta["topic"]``
(CANARD's title and section) is shown to the rewriter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from turnwise.data.schema import Conversation, Message
from turnwise.rag.engine import RagEngine
from turnwise.records import RecordStore, make_record
from turnwise.stage.runner import Cost, run_bounded, unfinished


@dataclass
class BatchResult:
    """Totals of one run (this run only)."""

    cost: Cost = field(default_factory=Cost)
    records: int = 0
    turns: int = 0
    rewrites: Counter[str] = field(default_factory=Counter)


async def answer_conversation(conv: Conversation, engine: RagEngine) -> dict[str, Any]:
    """Answer the last user turn and then each follow-up; return the stage record."""
    messages: list[Message] = [dict(m) for m in conv.messages]
    to_ask = list(conv.followups)
    topic = conv.meta.get("topic") if isinstance(conv.meta.get("topic"), str) else None
    meta = {**conv.meta, **_models(engine)}
    if messages[-1]["role"] == "assistant":
        if not to_ask:
            return make_record(conv.id, "filtered", {"messages": messages, "turns": []},
                               reason="ends with an assistant turn", meta={**meta, "cost": Cost().to_dict()})
        messages.append({"role": "user", "content": to_ask.pop(0)})
    cost, turns = Cost(), []
    while True:
        turn = await engine.answer(messages, topic)
        cost += turn.cost
        turns.append(turn.to_log())
        if turn.answer is None:
            return make_record(conv.id, "failed", {"messages": messages, "turns": turns},
                               reason=f"turn {turn.index}: {turn.error}", meta={**meta, "cost": cost.to_dict()})
        messages.append({"role": "assistant", "content": turn.answer})
        if not to_ask:
            break
        messages.append({"role": "user", "content": to_ask.pop(0)})
    return make_record(conv.id, "ok", {"messages": messages, "turns": turns}, meta={**meta, "cost": cost.to_dict()})


def _models(engine: RagEngine) -> dict[str, Any]:
    """Which models answered and rewrote (the full settings are in the manifest)."""
    rewriter = engine.rewriter
    return {"model": {"backend": engine.model.backend, "model": engine.model.model},
            "rewriter": {"backend": rewriter.model.backend, "model": rewriter.model.model,
                         "template": rewriter.config.template} if rewriter else None}


async def run_rag_batch(
    conversations: Iterable[Conversation],
    engine: RagEngine,
    store: RecordStore,
    *,
    max_in_flight: int = 16,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> BatchResult:
    """Answer every conversation not yet in ``store``; each record is written as soon as it is done.

    Args:
        conversations: the input stream; ids must be unique.
        engine: rewriter, index and answering model.
        store: the resumable output; finished ids are skipped.
        max_in_flight: conversations in work at once.
        on_record: called with each record written (progress bars).
    """
    result = BatchResult()
    async def work(conv: Conversation) -> None:
        record = await answer_conversation(conv, engine)
        store.append(record)
        result.records += 1
        result.turns += len(record["turns"])
        result.rewrites.update(t["rewrite"]["status"] for t in record["turns"] if t["rewrite"])
        result.cost += Cost(**record["meta"]["cost"])
        if on_record is not None:
            on_record(record)

    await run_bounded(unfinished(conversations, store.done, "conversation"), work, max_in_flight)
    return result
