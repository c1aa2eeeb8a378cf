"""The ``score`` stage: score answers with LongReward's AI feedback and/or verifiable checks.

    turnwise score answers.jsonl scored.jsonl --judge-model Qwen/Qwen2.5-72B-Instruct \\
        --judge-base-url http://127.0.0.1:8000/v1
    turnwise score answers.jsonl scored.jsonl --scorer numeric                  # ground truth in meta.reference
    turnwise score answers.jsonl scored.jsonl --scorer longreward --scorer numeric=2 --judge-model ...

    - name: score                     # in a recipe
      kind: score
      inputs: {answers: generate}
      models: {judge: judge}
      settings: {scorer: [longreward]}

Writes ``OUT`` (per answer the scores of every dimension (0–10), their mean, the judge's evidence and cost) and
``OUT.manifest.json``. Settings: :class:`ScoreSettings` (the scoring part shared with ``bestofn``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from turnwise.records import read_stage_output
from turnwise.score.settings import ScoringSettings, build_scorer_from, check_scoring
from turnwise.stage.context import StageContext, StageResult
from turnwise.stage.inputs import replies_line, short, tally
from turnwise.stage.spec import Output, Port, Stage


@dataclass(frozen=True)
class ScoreSettings(ScoringSettings):
    """Settings of ``score``: how responses are scored (:class:`~turnwise.score.settings.ScoringSettings`), plus
    which answers.

    Attributes:
        limit: score only the first N conversations (0 = all).
        input_format: the input's format (openai, sharegpt, ...); detected from the first record when null.
        skip_invalid: skip malformed input records and count them in the manifest, instead of stopping.
        max_in_flight: conversations scored at once (each scores its responses and dimensions in parallel).
    """

    limit: int = 0
    input_format: str | None = field(default=None, metadata={"cli": "--from"})
    skip_invalid: bool = False
    max_in_flight: int = 16


def replies(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per dimension the judge's verdicts that could be read (a dimension that does not apply is no call)."""
    outcomes: dict[str, list[tuple[bool, str]]] = {}
    for result in results:
        for name, dim in result.get("dimensions", {}).items():
            if dim["status"] in ("ok", "failed"):
                outcomes.setdefault(name, []).append((dim["status"] == "ok",
                                                      (dim.get("reason") or "").split(": ", 1)[-1]))
    return {name: tally(found) for name, found in outcomes.items()}


def example(results: list[dict[str, Any]]) -> str | None:
    """A judge's analysis, as written, of the first dimension that has one."""
    return next((dim["details"]["analysis"] for result in results for dim in result.get("dimensions", {}).values()
                 if dim.get("details", {}).get("analysis")), None)


def per_response(cost: dict[str, Any]) -> str:
    """``judge calls 4.0, embeddings 12.0`` per scored response."""
    per = cost.get("per_response", {})
    return f"per response: judge calls {per.get('judge_calls', 0)}, embeddings {per.get('embedded', 0)}"


def score(ctx: StageContext) -> StageResult:
    from turnwise.score.stage import run_score

    s = ctx.settings
    answers = ctx.conversations("answers")
    ctx.total(len(answers))

    async def go() -> tuple[dict[str, Any], dict[str, int]]:
        async with ctx.open_models("judge") as (judge,):
            scorer = build_scorer_from(s, judge)
            with ctx.records("scores", {"scorer": scorer.describe()}) as run:
                totals = await run_score(answers, scorer, run.store, max_in_flight=s.max_in_flight, details=s.details,
                                         on_record=lambda _: ctx.advance())
                run.cost = totals.to_dict()
            return totals.to_dict(), dict(run.store.counts)

    cost, counts = asyncio.run(go())
    results = [res for r in read_stage_output(ctx.output("scores")) for res in r.get("results", [])]
    read, text = replies(results), example(results)
    return StageResult(ctx.outputs(), f"{cost.get('responses', 0)} responses scored, {per_response(cost)}"
                       + (f"; {replies_line(read)}" if replies_line(read) else ""), counts=counts, cost=cost,
                       numbers={"replies": read, **({"example": short(text)} if text else {})})


STAGE = Stage("score", "Score answers: LongReward's four AI-feedback dimensions and/or verifiable checks.",
              ScoreSettings, score,
              inputs=(Port("answers", "conversations that end with the answer to score (generate's records, or a "
                                      "file in any format)"),),
              models=(Port("judge", "the LLM judge of the longreward scorer", required=False, shared=False),),
              outputs=(Output("scores", "scores.jsonl", "per answer, the scores of every dimension"),),
              check=check_scoring)
