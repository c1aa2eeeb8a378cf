"""Adapters over the dialogue stages: simulate (self-play), detect (context dependence), generate (answer)."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turnwise.detect.judge import JudgeConfig
from turnwise.models.base import GenerationSettings
from turnwise.recipe.context import StageContext, StageResult
from turnwise.recipe.kinds.common import is_stage_output, merge_costs, percent, read_conversations
from turnwise.recipe.registry import Kind, Port, register
from turnwise.records import read_stage_output
from turnwise.simulate.engine import SimulateConfig

_CONVERSATIONS = "conversations: a file in any format turnwise reads, or a stage's dialogue records"


@dataclass
class SimulateSettings(SimulateConfig):
    """Settings of ``simulate``: :class:`~turnwise.simulate.engine.SimulateConfig`, plus which seeds.

    Attributes:
        limit: seeds grown into dialogues (the first ones of the input; 0 = all).
        seed_format: the seeds file's format (``text`` for one per line); null detects it.
    """

    limit: int = 0
    seed_format: str | None = None


def read_seed_list(path: Path, limit: int, fmt: str | None = None) -> list[Any]:
    """The first user turn of each conversation (or stage record, or text line), up to ``limit``."""
    from turnwise.simulate import Seed, read_seeds

    if is_stage_output(path):
        seeds = [Seed(c.id, c.user_turns[0], c.system, dict(c.meta)) for c in read_conversations(path)]
    else:
        seeds = list(read_seeds(path, fmt)[0])
    return seeds[:limit] if limit else seeds


@register(Kind("simulate", "Self-play: a user simulator and an assistant grow seed first turns into dialogues.",
               SimulateSettings, inputs=(Port("seeds", "first turns: " + _CONVERSATIONS + ", or a .txt file"),),
               models=(Port("user", "the user simulator (an ask model, or any model with mode: prompted)"),
                       Port("assistant", "the assistant")), outputs=("dialogues",)))
def simulate(ctx: StageContext) -> StageResult:
    from turnwise.simulate import run_simulate, summarize

    s = ctx.settings
    seeds = read_seed_list(ctx.input("seeds"), s.limit, s.seed_format)
    ctx.total(len(seeds))

    async def go() -> dict[str, Any]:
        config = {**s.to_dict(), "user_model": ctx.models["user"].name, "assistant_model": ctx.models["assistant"].name}
        async with ctx.open_models("user", "assistant") as (user, assistant):
            with ctx.records("dialogues.jsonl", "simulate", config) as (store, extra):
                result = await run_simulate(seeds, user, assistant, store, s, on_record=lambda _: ctx.advance())
                extra["cost"] = result.cost()
        return result.cost()

    cost = asyncio.run(go())
    stats = summarize(read_stage_output(ctx.path("dialogues.jsonl"))).to_dict()
    filters = ", ".join(f"{n} {reason}" for reason, n in stats["filters"].items()) or "none"
    return StageResult({"dialogues": "dialogues.jsonl"},
                       f"{stats['status'].get('ok', 0)} of {stats['dialogues']} dialogues kept, "
                       f"{stats['turns_per_dialogue']} turns each; user turns rejected by filters: {filters}",
                       counts=stats["status"], cost={**merge_costs(*cost.values()), "by_role": cost}, numbers=stats)


@dataclass
class DetectSettings:
    """Settings of ``detect``.

    Attributes:
        lang: ``en`` or ``zh`` for every conversation; null detects it per conversation.
        limit: conversations labelled (the first ones; 0 = all).
        judge: how the LLM judge is asked, when the stage has a ``judge`` model (else the cues decide alone).
        max_in_flight: conversations in work at once.
    """

    lang: str | None = None
    limit: int = 0
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    max_in_flight: int = 64


@register(Kind("detect", "Label every follow-up user turn as context-dependent or standalone (cues, optional judge).",
               DetectSettings, inputs=(Port("dialogues", _CONVERSATIONS),),
               models=(Port("judge", "an LLM judge that confirms the cues", required=False),),
               outputs=("detections",)))
def detect(ctx: StageContext) -> StageResult:
    from turnwise.detect import DetectConfig, run_detect

    s = ctx.settings
    conversations = read_conversations(ctx.input("dialogues"), s.limit)
    config = DetectConfig(lang=s.lang, judge=s.judge if "judge" in ctx.models else None)
    ctx.total(len(conversations))

    async def go() -> dict[str, Any]:
        settings = {"lang": s.lang, "judge": dataclasses.asdict(config.judge) if config.judge else None}
        async with ctx.open_models("judge") as (judge,):
            with ctx.records("detections.jsonl", "detect", settings) as (store, extra):
                result = await run_detect(conversations, store, config, judge, max_in_flight=s.max_in_flight,
                                          on_record=lambda _: ctx.advance())
                extra["cost"] = result.cost.to_dict()
        return result.cost.to_dict()

    cost = asyncio.run(go())
    records = read_stage_output(ctx.path("detections.jsonl"))
    turns = [t for r in records for t in r["turns"]]
    dependent = sum(t["dependent"] for t in turns)
    counts = {status: sum(r["status"] == status for r in records) for status in ("ok", "filtered", "failed")}
    share = percent(dependent, len(turns))
    return StageResult({"detections": "detections.jsonl"},
                       f"context-dependent: {dependent} of {len(turns)} follow-up turns ({share}) in {len(records)} "
                       "conversations", counts=counts, cost=cost,
                       numbers={"turns": len(turns), "dependent": dependent})


@dataclass
class GenerateSettings:
    """Settings of ``generate``.

    Attributes:
        sampling: the model's generation settings.
        limit: conversations answered (the first ones; 0 = all).
        max_in_flight: conversations answered at once.
    """

    sampling: GenerationSettings = field(default_factory=lambda: GenerationSettings(temperature=0.0, max_tokens=512))
    limit: int = 0
    max_in_flight: int = 256


def generate_answers(ctx: StageContext, role: str, conversations: list[Any], filename: str,
                     settings: GenerationSettings, max_in_flight: int = 256) -> dict[str, Any]:
    """Answer the conversations turn by turn (follow-ups included) with the model of ``role``; the run's cost."""
    from turnwise.stages.generate import run_generate

    async def go() -> dict[str, Any]:
        config = {"inputs": ctx.labels, "model": ctx.models[role].name, "settings": settings.to_dict()}
        async with ctx.open_models(role) as (model,):
            with ctx.records(filename, "generate", config) as (store, extra):
                result = await run_generate(conversations, model, store, settings, max_in_flight=max_in_flight,
                                            on_record=lambda _: ctx.advance())
                extra["cost"] = result.cost.to_dict()
        return result.cost.to_dict()

    return asyncio.run(go())


@register(Kind("generate", "Answer conversations turn by turn, follow-ups with the model's own history.",
               GenerateSettings, inputs=(Port("conversations", _CONVERSATIONS),),
               models=(Port("model", "the model that answers"),), outputs=("answers",)))
def generate(ctx: StageContext) -> StageResult:
    s = ctx.settings
    conversations = read_conversations(ctx.input("conversations"), s.limit)
    ctx.total(len(conversations))
    cost = generate_answers(ctx, "model", conversations, "answers.jsonl", s.sampling, s.max_in_flight)
    records = read_stage_output(ctx.path("answers.jsonl"))
    ok = sum(r["status"] == "ok" for r in records)
    turns = sum(m["role"] == "assistant" for r in records for m in r["messages"])
    return StageResult({"answers": "answers.jsonl"}, f"{ok} of {len(records)} conversations answered ({turns} turns)",
                       counts={"ok": ok, "other": len(records) - ok}, cost=cost)
