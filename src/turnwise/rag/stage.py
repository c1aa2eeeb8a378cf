"""The rewrite stage: one record per user turn, with the query to search and how it was reached.

    turnwise rewrite dialogues.jsonl rewrites.jsonl --model M          # every user turn of every conversation
    turnwise rewrite canard_dev.json rewrites.jsonl --from canard --model M

A record is ``{id, status, question, rewrite, query, rewrite_status, gate, lang, reference?, meta}``:
``rewrite_status`` is ``rewritten``, ``unchanged`` (the model kept the question), ``skipped`` (the gate made
no call: first turn or standalone; ``rewrite`` is the question) or ``failed``. A failed record keeps the
reason, every raw reply and why each was rejected; its ``rewrite`` is null and its ``query`` the question,
which is what retrieval falls back to. ``--retry-failed`` asks again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from turnwise.rag.datasets import RewriteExample
from turnwise.rag.rewriter import Rewrite, Rewriter
from turnwise.records import RecordStore, make_record
from turnwise.stage.runner import Cost, run_bounded, unfinished


@dataclass
class RewriteResult:
    """Totals of one run (this run only; resumed records are counted by the store)."""

    cost: Cost = field(default_factory=Cost)
    records: int = 0
    statuses: Counter[str] = field(default_factory=Counter)


def rewrite_record(example: RewriteExample, done: Rewrite, rewriter: Rewriter) -> dict[str, Any]:
    """The stage record of one rewritten turn."""
    info = done.to_dict()
    payload: dict[str, Any] = {"question": example.question, "rewrite": done.rewrite, "query": done.query,
                               "rewrite_status": done.status, "gate": info["gate"], "lang": done.lang}
    if example.reference is not None:
        payload.update(reference=example.reference, needs_rewrite=example.requires_rewrite)
    if example.topic:
        payload["topic"] = example.topic
    if "raw" in info:
        payload["raw"] = info["raw"]
    if done.status == "failed":
        payload["errors"] = done.errors
    meta = {**example.meta, "group": example.group, "rewriter": rewriter.describe(), "cost": done.cost.to_dict()}
    status = "failed" if done.status == "failed" else "ok"
    return make_record(example.id, status, payload, reason=done.reason, meta=meta)


async def rewrite_example(example: RewriteExample, rewriter: Rewriter) -> dict[str, Any]:
    done = await rewriter.rewrite(example.history, example.question, example.topic)
    return rewrite_record(example, done, rewriter)


async def run_rewrite(
    examples: Iterable[RewriteExample],
    rewriter: Rewriter,
    store: RecordStore,
    *,
    max_in_flight: int = 64,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> RewriteResult:
    """Rewrite every example not yet in ``store``; each record is written as soon as it is done.

    Args:
        examples: the turns; ids must be unique.
        rewriter: the model, prompt and gate.
        store: the resumable output; finished ids are skipped.
        max_in_flight: turns in work at once.
        on_record: called with each record written (progress bars).
    """
    result = RewriteResult()
    async def work(example: RewriteExample) -> None:
        record = await rewrite_example(example, rewriter)
        store.append(record)
        result.records += 1
        result.statuses[record["rewrite_status"]] += 1
        result.cost += Cost(**record["meta"]["cost"])
        if on_record is not None:
            on_record(record)

    await run_bounded(unfinished(examples, store.done, "turn"), work, max_in_flight)
    return result
