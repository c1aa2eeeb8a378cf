"""The ``capo`` stage: context-aware preference pairs (Parrot's CaPO) for the dependent turns of dialogues.

    turnwise capo dialogues.jsonl pairs.jsonl --model ./tiny                       # any model, tiny ones too
    turnwise capo dialogues.jsonl pairs.jsonl --model M --base-url URL --prompted   # an instruction model
    turnwise capo dialogues.jsonl pairs.jsonl --model M --detections detections.jsonl --mix neglect=2,hallucination=1

    - name: capo                      # in a recipe
      kind: capo
      inputs: {dialogues: data, detections: detect}
      models: {negative: sft, simulator: ask}
      settings: {limit: 64, settings: {temperature: 0.7, max_tokens: 32, seed: 0}}   # --max-tokens 32 ...

Writes ``OUT`` (the unique ok pairs in TRL's conversational preference layout, what ``turnwise train dpo``
reads; written when the run completes), ``OUT.records.jsonl`` (every pair with its status, reason and raw
text; re-running resumes it) and ``OUT.manifest.json``. Settings: :class:`~turnwise.capo.stage.CapoConfig`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from turnwise.capo.stage import CapoConfig
from turnwise.capo.strategies import STRATEGIES
from turnwise.stage.context import StageContext, StageResult
from turnwise.stage.inputs import replies_line, short, tally
from turnwise.stage.spec import Output, Port, Stage

DIALOGUES = "dialogues: a file in any format turnwise reads, or a stage's dialogue records"


def capo(ctx: StageContext) -> StageResult:
    from turnwise.capo import CapoModels, export_pairs, run_capo
    from turnwise.detect import TurnDecision
    from turnwise.records import read_stage_output

    s = ctx.settings
    dialogues = ctx.conversations("dialogues")
    detections = None
    if ctx.has_input("detections"):
        detections = {r["id"]: [TurnDecision.from_dict(t) for t in r["turns"]]
                      for r in read_stage_output(ctx.input("detections")) if r["status"] == "ok"}

    async def go() -> tuple[dict[str, int], Any, dict[str, Any]]:
        async with ctx.open_models("negative", "chosen", "simulator") as (negative, chosen, simulator):
            with ctx.records("records", manifest_for="pairs") as run:
                result = await run_capo(dialogues, run.store, s, CapoModels(negative, chosen, simulator),
                                        detections=detections, max_in_flight=s.max_in_flight,
                                        on_record=lambda _: ctx.advance())
                exported = export_pairs(run.store.path, ctx.output("pairs"))  # every record is flushed already
                run.cost, run.fields["pairs"] = result.cost.to_dict(), exported.to_dict()
            return dict(run.store.counts), exported, result.cost.to_dict()

    counts, exported, cost = asyncio.run(go())
    per = ", ".join(f"{k} {exported.by_strategy[k]}" for k in STRATEGIES if s.mix.get(k, 0) > 0)
    records = read_stage_output(ctx.output("records"))
    read = replies(records)
    example = next((r["rejected"][0]["content"] for r in records if r["status"] == "ok"), None)
    return StageResult(ctx.outputs(), f"{exported.written} pairs ({per}), {exported.duplicates} duplicates dropped, "
                       f"{counts.get('filtered', 0)} filtered, {counts.get('failed', 0)} failed"
                       + (f"; {replies_line(read)}" if replies_line(read) else ""), counts=counts, cost=cost,
                       numbers={**exported.to_dict(), "replies": read, **({"example": short(example)} if example
                                                                          else {})})


def replies(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Negatives written (a failed call or an unreadable reply is not one), and, where the model invented a history
    by prompt, the histories that could be read."""
    invented = [r for r in records if r.get("meta", {}).get("strategy") == "hallucination"
                and r.get("meta", {}).get("mode") == "prompted"]
    return {"negative": tally([(r["status"] != "failed", r.get("reason", "")) for r in records]),
            "invented history": tally([(not (r["status"] == "failed" and "unparsable" in r.get("reason", "")),
                                        r.get("reason", "")) for r in invented])}


STAGE = Stage("capo", "CaPO pairs: negatives written with the history left out, invented, or wrong.", CapoConfig,
              capo, inputs=(Port("dialogues", DIALOGUES),
                            Port("detections", "a detect stage's labels (default: the cue rules on the fly)",
                                 required=False)),
              models=(Port("negative", "the negative writer: writes the rejected answers"),
                      Port("chosen", "writes the chosen answers with the full history (default: the dialogue's own)",
                           required=False),
                      Port("simulator", "invents opening turns for hallucination (default: the negative writer)",
                           required=False)),
              outputs=(Output("pairs", "pairs.jsonl", "preference pairs (trl-pref) for the trainer"),
                       Output("records", "records.jsonl", "every pair with its status, reason and raw text")),
              primary="negative")
