"""Score the answers in a file: the core of `turnwise score`.

    turnwise score answers.jsonl scored.jsonl --judge-model Qwen/Qwen2.5-72B-Instruct --judge-base-url ...

Each input conversation ends with the assistant answer to score (what `turnwise generate` writes; its
``samples``, when it sampled several, are all scored). The prompt is everything before that answer, and
``meta.context`` / ``meta.query`` / ``meta.reference`` are used when present (see
:meth:`ScoreInput.from_prompt`). Each conversation becomes one record with every response's scores; a
response the judge could not score makes the record ``failed``, with the raw replies inside.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from turnwise.data.schema import Conversation
from turnwise.records import RecordStore, make_record
from turnwise.score.types import ScoreBatch, ScoreCost, ScoreInput, Scorer
from turnwise.stage.runner import run_bounded, unfinished


@dataclass
class ScoringTotals:
    """What scoring cost over a run, and per scored response.

    Attributes:
        shared: work done once per (context, question): context embeddings, completeness key points.
        own: work done for each response: its judge calls, its statements' embeddings.
        responses: responses scored (whatever their outcome).
        failed: responses that could not be scored.
    """

    shared: ScoreCost = field(default_factory=ScoreCost)
    own: ScoreCost = field(default_factory=ScoreCost)
    responses: int = 0
    failed: int = 0

    def add(self, batch: ScoreBatch) -> None:
        self.shared += batch.shared
        for result in batch.results:
            self.own += result.cost
            self.responses += 1
            self.failed += result.status != "ok"

    def to_dict(self) -> dict[str, Any]:
        total = ScoreCost()
        total += self.shared
        total += self.own
        n = max(self.responses, 1)
        judge = total.judge
        return {
            "responses": self.responses,
            "failed": self.failed,
            "judge_calls": judge.calls,
            "embedded": total.embedded,
            "per_response": {
                "judge_calls": round(judge.calls / n, 3),
                "prompt_tokens": round(judge.prompt_tokens / n, 1),
                "completion_tokens": round(judge.completion_tokens / n, 1),
                "embedded": round(total.embedded / n, 3),
            },
            "shared": self.shared.to_dict(),
            "own": self.own.to_dict(),
        }


def responses_of(conv: Conversation) -> list[str]:
    """The answers to score: ``meta.samples`` when it lists several, else the last assistant turn."""
    samples = conv.meta.get("samples")
    if isinstance(samples, list) and len(samples) > 1 and all(isinstance(s, str) for s in samples):
        return list(samples)
    return [conv.messages[-1]["content"]]


async def score_conversation(conv: Conversation, scorer: Scorer, *, details: bool = True) -> tuple[dict, ScoreBatch]:
    """Score one conversation's answer(s); returns the record and the batch (for the cost)."""
    meta = {k: v for k, v in conv.meta.items() if k != "samples"}
    if conv.messages[-1]["role"] != "assistant":
        reason = "no answer to score: the conversation ends with a user turn"
        return make_record(conv.id, "filtered", {"messages": conv.messages}, reason=reason, meta=meta), ScoreBatch([])
    item = ScoreInput.from_prompt(conv.id, conv.messages[:-1], conv.meta)
    batch = await scorer.score(item, responses_of(conv))
    results = [r.to_dict(details) for r in batch.results]
    failed = [(i, r) for i, r in enumerate(batch.results) if r.status != "ok"]
    reason = f"response {failed[0][0]}: {failed[0][1].reason}" if failed else None
    meta.update(scorer=scorer.name, cost={"shared": batch.shared.to_dict()})
    payload = {"messages": conv.messages, "results": results}
    return make_record(conv.id, "failed" if failed else "ok", payload, reason=reason, meta=meta), batch


async def run_score(
    conversations: Iterable[Conversation],
    scorer: Scorer,
    store: RecordStore,
    *,
    max_in_flight: int = 16,
    details: bool = True,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> ScoringTotals:
    """Score every conversation not yet in ``store``; each record is written as soon as it is done.

    Args:
        conversations: the input stream; ids must be unique.
        scorer: any scorer (LongReward, verifiable, mixed).
        store: the resumable output; finished ids are skipped.
        max_in_flight: conversations scored at once (each scores its responses and dimensions in parallel).
        details: keep the judges' analyses in the records (failures always keep their raw replies).
        on_record: called with each record written (progress bars).
    """
    totals = ScoringTotals()
    async def work(conv: Conversation) -> None:
        record, batch = await score_conversation(conv, scorer, details=details)
        store.append(record)
        totals.add(batch)
        if on_record is not None:
            on_record(record)

    await run_bounded(unfinished(conversations, store.done, "conversation"), work, max_in_flight)
    return totals
