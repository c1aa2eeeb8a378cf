"""Adapters that write preference pairs: CaPO negatives (Parrot) and best-of-N scored by AI feedback or checks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from turnwise.bestofn.stage import BestOfNConfig
from turnwise.capo.stage import CapoConfig
from turnwise.data.schema import Conversation
from turnwise.recipe.context import StageContext, StageResult
from turnwise.recipe.kinds.common import read_conversations
from turnwise.recipe.registry import Kind, Port, register
from turnwise.records import read_stage_output
from turnwise.score.longreward import LongRewardConfig

_DIALOGUES = "dialogues: a file in any format turnwise reads, or a stage's dialogue records"


@dataclass(frozen=True)
class CapoSettings(CapoConfig):
    """Settings of ``capo``: :class:`~turnwise.capo.stage.CapoConfig`, plus which dialogues.

    Attributes:
        limit: dialogues whose dependent turns get pairs (the first ones; 0 = all).
        max_in_flight: turns in work at once.
    """

    limit: int = 0
    max_in_flight: int = 64


@register(Kind("capo", "CaPO pairs: negatives written with the history left out, invented, or wrong.", CapoSettings,
               inputs=(Port("dialogues", _DIALOGUES),
                       Port("detections", "a detect stage's labels (default: the cue rules on the fly)",
                            required=False)),
               models=(Port("negative", "writes the rejected answers"),
                       Port("chosen", "writes the chosen answers (default: the dialogue's own)", required=False),
                       Port("simulator", "invents opening turns (default: the negative writer)", required=False)),
               outputs=("pairs", "records")))
def capo(ctx: StageContext) -> StageResult:
    from turnwise.capo import CapoModels, export_pairs, run_capo
    from turnwise.detect import TurnDecision

    s = ctx.settings
    dialogues = read_conversations(ctx.input("dialogues"), s.limit)
    detections = None
    if ctx.has_input("detections"):
        detections = {r["id"]: [TurnDecision.from_dict(t) for t in r["turns"]]
                      for r in read_stage_output(ctx.input("detections")) if r["status"] == "ok"}

    async def go() -> tuple[dict[str, int], Any, dict[str, Any]]:
        config = {**s.to_dict(), "models": {role: m.name for role, m in ctx.models.items()}}
        async with ctx.open_models("negative", "chosen", "simulator") as (negative, chosen, simulator):
            with ctx.records("records.jsonl", "capo", config, manifest_for="pairs.jsonl") as (store, extra):
                result = await run_capo(dialogues, store, s, CapoModels(negative, chosen, simulator),
                                        detections=detections, max_in_flight=s.max_in_flight,
                                        on_record=lambda _: ctx.advance())
                exported = export_pairs(store.path, ctx.path("pairs.jsonl"))  # every record is flushed already
                extra.update(cost=result.cost.to_dict(), pairs=exported.to_dict())
            return dict(store.counts), exported, result.cost.to_dict()

    counts, exported, cost = asyncio.run(go())
    per = ", ".join(f"{k} {exported.by_strategy[k]}" for k in ("neglect", "hallucination", "misunderstanding")
                    if s.mix.get(k, 0) > 0)
    return StageResult({"pairs": "pairs.jsonl", "records": "records.jsonl"},
                       f"{exported.written} pairs ({per}), {counts.get('filtered', 0)} filtered, "
                       f"{counts.get('failed', 0)} failed", counts=counts, cost=cost, numbers=exported.to_dict())


@dataclass(frozen=True)
class BestOfNSettings(BestOfNConfig):
    """Settings of ``bestofn``: :class:`~turnwise.bestofn.stage.BestOfNConfig`, plus prompts and scorer.

    Attributes:
        limit: dialogues whose turns become prompts (the first ones; 0 = all).
        prompts: ``every_turn`` (each user turn of a dialogue, with the history before it, is a prompt, its
            reference answer taken from ``meta.references`` when the dialogue has them) or ``last``.
        scorer: scorer specs (``NAME[=WEIGHT]``): ``longreward`` (needs a ``judge`` model), ``exact``,
            ``normalized``, ``numeric``, or a ``module:function`` check such as ``turnwise.toy:check_answer``.
        retriever: LongReward's faithfulness evidence: ``dense`` (all-MiniLM-L6-v2) or ``bm25``.
        judge_attempts: tries per judge verdict.
        judge_max_tokens: most tokens of one judge reply.
        longreward: LongReward's dimensions, language and retrieval depth.
    """

    limit: int = 0
    prompts: str = "every_turn"
    scorer: tuple[str, ...] = ("longreward",)
    retriever: str = "dense"
    judge_attempts: int = 3
    judge_max_tokens: int = 1024
    longreward: LongRewardConfig = field(default_factory=LongRewardConfig)


def _check_bestofn(settings: BestOfNSettings, models: dict[str, str]) -> list[str]:
    from turnwise.errors import ConfigError
    from turnwise.retrieval.retriever import KINDS
    from turnwise.score.mix import check_specs, parse_spec

    problems = []
    try:
        check_specs(list(settings.scorer))
    except ConfigError as exc:
        problems.append(f"settings.scorer: {exc}")
    if any(parse_spec(s)[0] == "longreward" for s in settings.scorer) and "judge" not in models:
        problems.append("settings.scorer: longreward needs a judge model (models: {judge: NAME})")
    if settings.prompts not in ("every_turn", "last"):
        problems.append(f"settings.prompts: expected every_turn or last, got {settings.prompts!r}")
    if settings.retriever not in KINDS:
        problems.append(f"settings.retriever: expected one of {', '.join(KINDS)}, got {settings.retriever!r}")
    return problems


def turn_prompts(conversations: list[Conversation], which: str = "every_turn") -> Iterator[Conversation]:
    """Prompts ``<id>:<k>``: the history up to user turn k, with ``meta.reference`` from ``meta.references[k]``."""
    for conv in conversations:
        references = conv.meta.get("references") or []
        users = [i for i, m in enumerate(conv.messages) if m["role"] == "user"]
        for k, index in enumerate(users):
            if which == "last" and k != len(users) - 1:
                continue
            meta = {"reference": references[k]} if k < len(references) else {}
            yield Conversation(f"{conv.id}:{k}", conv.messages[: index + 1], meta=meta)


def _scorer(s: BestOfNSettings, judge_model: Any) -> Any:
    from turnwise.judge.core import Judge, RetryPolicy
    from turnwise.retrieval.retriever import make_retriever
    from turnwise.score.mix import build_scorer, parse_spec

    judge = Judge(judge_model, RetryPolicy(attempts=s.judge_attempts, max_tokens=s.judge_max_tokens)) \
        if judge_model is not None else None
    needs = any(parse_spec(spec)[0] == "longreward" for spec in s.scorer)
    retriever = make_retriever(s.retriever) if needs else None
    return build_scorer(list(s.scorer), judge=judge, retriever=retriever, longreward=s.longreward)


@register(Kind("bestofn", "Best-of-N pairs: N sampled answers per prompt, scored, best against worst.",
               BestOfNSettings, inputs=(Port("dialogues", _DIALOGUES),),
               models=(Port("policy", "samples the answers"),
                       Port("judge", "the LLM judge of the longreward scorer", required=False)),
               outputs=("pairs", "records"), check=_check_bestofn))
def bestofn(ctx: StageContext) -> StageResult:
    from turnwise.bestofn.stage import run_bestofn, write_pairs

    s = ctx.settings
    prompts = list(turn_prompts(read_conversations(ctx.input("dialogues"), s.limit), s.prompts))
    ctx.total(len(prompts))

    async def go() -> tuple[int, dict[str, Any], str]:
        async with ctx.open_models("policy", "judge") as (policy, judge):
            scorer = _scorer(s, judge)
            config = {"policy": ctx.models["policy"].name, "scorer": scorer.describe(), "n": s.n,
                      "settings": s.settings.to_dict(), "min_scored": s.min_scored, "min_margin": s.min_margin}
            with ctx.records("records.jsonl", "bestofn", config, manifest_for="pairs.jsonl") as (store, extra):
                totals = await run_bestofn(prompts, policy, scorer, store, s, on_record=lambda _: ctx.advance())
                extra["pairs"] = write_pairs(store.path, ctx.path("pairs.jsonl"))
                extra["cost"] = totals.to_dict()
            return extra["pairs"], totals.to_dict(), scorer.name

    pairs, cost, scorer_name = asyncio.run(go())
    records = read_stage_output(ctx.path("records.jsonl"))
    totals = [c["total"] for r in records for c in r.get("candidates", []) if c["total"] is not None]
    counts = {status: sum(r["status"] == status for r in records) for status in ("ok", "filtered", "failed")}
    mean = sum(totals) / len(totals) if totals else 0.0
    return StageResult({"pairs": "pairs.jsonl", "records": "records.jsonl"},
                       f"{pairs} pairs from {len(prompts)} prompts ({s.n} samples each, scored by {scorer_name}: "
                       f"mean {mean:.1f}/10)", counts=counts, cost={**cost["policy"], "scoring": cost["scoring"]},
                       numbers={"pairs": pairs, "prompts": len(prompts), "mean_score": mean})
