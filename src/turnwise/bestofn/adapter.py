"""The ``bestofn`` stage: sample N answers per prompt, score them, write best-vs-worst preference pairs.

    turnwise bestofn prompts.jsonl pairs.jsonl --model runs/sft --backend local \\
        --judge-model Qwen/Qwen2.5-72B-Instruct --judge-base-url http://127.0.0.1:8000/v1 --n 10
    turnwise bestofn dialogues.jsonl pairs.jsonl --model runs/sft --prompts every_turn --scorer numeric

    - name: bestofn                   # in a recipe
      kind: bestofn
      inputs: {dialogues: data}
      models: {policy: sft, judge: judge}
      settings: {n: 10, prompts: every_turn}

Writes ``OUT`` (TRL's conversational preference pairs, what ``turnwise train dpo`` reads; written when the run
completes), ``OUT.records.jsonl`` (every prompt with all candidates, scores and judge evidence; resumable) and
``OUT.manifest.json``. Settings: :class:`~turnwise.bestofn.stage.BestOfNConfig`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from turnwise.bestofn.stage import BestOfNConfig
from turnwise.score.settings import build_scorer_from, check_scoring
from turnwise.stage.context import StageContext, StageResult
from turnwise.stage.inputs import replies_line, short
from turnwise.stage.spec import Output, Port, Stage


def bestofn(ctx: StageContext) -> StageResult:
    from turnwise.bestofn.stage import run_bestofn, turn_prompts, write_pairs
    from turnwise.records import read_stage_output
    from turnwise.score.adapter import example, per_response, replies

    s = ctx.settings
    prompts = list(turn_prompts(ctx.conversations("dialogues"), s.prompts))
    ctx.total(len(prompts))

    async def go() -> tuple[int, dict[str, Any], str]:
        async with ctx.open_models("policy", "judge") as (policy, judge):
            scorer = build_scorer_from(s, judge)
            with ctx.records("records", {"scorer": scorer.describe()}, manifest_for="pairs") as run:
                totals = await run_bestofn(prompts, policy, scorer, run.store, s, on_record=lambda _: ctx.advance())
                pairs = write_pairs(run.store.path, ctx.output("pairs"))
                run.cost, run.counts["pairs"] = totals.to_dict(), pairs
            return pairs, totals.to_dict(), scorer.name

    pairs, cost, scorer_name = asyncio.run(go())
    records = read_stage_output(ctx.output("records"))
    totals = [c["total"] for r in records for c in r.get("candidates", []) if c["total"] is not None]
    counts = {status: sum(r["status"] == status for r in records) for status in ("ok", "filtered", "failed")}
    mean = sum(totals) / len(totals) if totals else 0.0
    candidates = [c for r in records for c in r.get("candidates", [])]
    read, text = replies(candidates), example(candidates)
    judged = f"; {per_response(cost['scoring'])}; {replies_line(read)}" if s.needs_judge() else ""
    return StageResult(ctx.outputs(), f"{pairs} preference pairs from {len(prompts)} prompts ({s.n} samples each, "
                       f"scored by {scorer_name}: mean {mean:.1f}/10{judged})",
                       counts=counts, cost={**cost["policy"], "scoring": cost["scoring"]},
                       numbers={"pairs": pairs, "prompts": len(prompts), "mean_score": mean, "replies": read,
                                **({"example": short(text)} if text else {})})


STAGE = Stage("bestofn", "Best-of-N pairs: N sampled answers per prompt, scored, best against worst.", BestOfNConfig,
              bestofn,
              inputs=(Port("dialogues", "prompts (conversations ending with a user turn) or dialogues (see "
                                        "prompts): a file in any format turnwise reads, or a stage's records"),),
              models=(Port("policy", "the policy: samples the answers"),
                      Port("judge", "the LLM judge of the longreward scorer", required=False, shared=False)),
              outputs=(Output("pairs", "pairs.jsonl", "best-vs-worst preference pairs (trl-pref) for the trainer"),
                       Output("records", "records.jsonl", "every prompt with all candidates and their scores")),
              primary="policy", check=check_scoring)
