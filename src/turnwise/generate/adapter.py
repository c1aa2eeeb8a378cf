"""The ``generate`` stage: answer each conversation's last user turn, then each follow-up, with the model's own
history.

    turnwise generate conversations.jsonl answers.jsonl --model Qwen/Qwen2.5-0.5B-Instruct --base-url URL
    turnwise generate mt_bench.jsonl answers.jsonl --model ./my-model --backend local --temperature 0

    - name: answer                    # in a recipe
      kind: generate
      inputs: {conversations: data}
      models: {model: sft}
      settings: {sampling: {temperature: 0, max_tokens: 256}}   # on the command line: --temperature 0 ...

Writes ``OUT`` (one record per conversation: ``{id, status, reason?, messages, meta: {cost, model}}``) and
``OUT.manifest.json``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from turnwise.models.base import GenerationSettings
from turnwise.stage.context import StageContext, StageResult
from turnwise.stage.spec import Output, Port, Stage

CONVERSATIONS = "conversations: a file in any format turnwise reads, or a stage's dialogue records"


@dataclass
class GenerateSettings:
    """Settings of ``generate``.

    Attributes:
        sampling: the model's generation settings (``n > 1`` keeps every sample of a single-turn answer).
        limit: answer only the first N conversations (0 = all).
        input_format: the input's format (openai, sharegpt, mt-bench, ...); detected from the first record when
            null.
        skip_invalid: skip malformed input records and count them in the manifest, instead of stopping.
        max_in_flight: conversations answered at once (the backend bounds its own requests).
    """

    sampling: GenerationSettings = field(default_factory=lambda: GenerationSettings(temperature=0.7, max_tokens=512),
                                         metadata={"cli": ""})
    limit: int = 0
    input_format: str | None = field(default=None, metadata={"cli": "--from"})
    skip_invalid: bool = False
    max_in_flight: int = 256


def answer_all(ctx: StageContext, role: str, conversations: list[Any], output: str, settings: GenerationSettings,
               max_in_flight: int = 256) -> dict[str, Any]:
    """Answer the conversations turn by turn (follow-ups included) with the model of ``role`` into ``output`` (an
    output's name or a file of the stage's own); the run's cost."""
    from turnwise.generate.core import run_generate

    async def go() -> dict[str, Any]:
        async with ctx.open_models(role) as (model,):
            with ctx.records(output, {"role": role, "sampling": settings.to_dict()}) as run:
                result = await run_generate(conversations, model, run.store, settings, max_in_flight=max_in_flight,
                                            on_record=lambda _: ctx.advance())
                run.cost = result.cost.to_dict()
        return result.cost.to_dict()

    return asyncio.run(go())


def generate(ctx: StageContext) -> StageResult:
    from turnwise.records import read_stage_output

    s = ctx.settings
    conversations = ctx.conversations("conversations")
    ctx.total(len(conversations))
    cost = answer_all(ctx, "model", conversations, "answers", s.sampling, s.max_in_flight)
    records = read_stage_output(ctx.output("answers"))
    ok = sum(r["status"] == "ok" for r in records)
    turns = sum(m["role"] == "assistant" for r in records if r["status"] == "ok" for m in r["messages"])
    return StageResult(ctx.outputs(), f"{ok} of {len(records)} conversations answered ({turns} turns); calls "
                       f"{cost.get('calls', 0)}, cached {cost.get('cached', 0)}, failed {cost.get('failed', 0)}, "
                       f"tokens {cost.get('prompt_tokens', 0)}+{cost.get('completion_tokens', 0)}",
                       counts={"ok": ok, "other": len(records) - ok}, cost=cost)


STAGE = Stage("generate", "Answer each conversation turn by turn, follow-ups with the model's own history.",
              GenerateSettings, generate, inputs=(Port("conversations", CONVERSATIONS),),
              models=(Port("model", "the model that answers"),),
              outputs=(Output("answers", "answers.jsonl", "one record per conversation, every turn answered"),),
              primary="model")
