"""The ``eval`` adapter: answer held-out dialogues turn by turn with each model's own history, then score.

Two methods. ``toy``: the quickstart's verifiable check (:func:`turnwise.toy.check_answer` against each
turn's ``meta.references``), no judge, a table of standalone and dependent turns right per model.
``judge``: :mod:`turnwise.eval` on a real benchmark (MT-Bench, MT-Eval, MT-Bench-101, N-turn files), an
LLM judge grading every turn, and its Markdown/JSON/HTML report. Every role of the stage but ``judge`` is a
model to evaluate, named in the results by its role (``models: {SFT: sft, SFT + DPO: dpo, judge: judge}``).
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any

from turnwise.models.base import GenerationSettings
from turnwise.recipe.context import StageContext, StageResult
from turnwise.recipe.kinds.common import merge_costs, read_conversations
from turnwise.recipe.kinds.dialogue import generate_answers
from turnwise.recipe.registry import Kind, Port, register
from turnwise.records import RecordStore, RunManifest, read_stage_output

METHODS = ("toy", "judge")


@dataclass
class EvalSettings:
    """Settings of ``eval``.

    Attributes:
        method: ``toy`` (turns checked against ``meta.references``, no judge) or ``judge`` (an LLM judge grades
            every turn 1–10, :mod:`turnwise.eval`).
        benchmark: judge: ``auto``, ``mt-bench``, ``mt-eval``, ``mt-bench-101`` or ``turns``.
        limit: only the first N dialogues (0 = all).
        temperature: one temperature for every answer; null = greedy (toy) or FastChat's per-category table (judge).
        max_tokens: most new tokens per answer.
        top_p: nucleus sampling mass.
        seed: sampling seed, where the backend honours one.
        lang: judge prompt language: ``auto``, ``en`` or ``zh``.
        judge_attempts: tries per judge verdict.
        judge_max_tokens: most tokens of one judge reply.
        max_in_flight: dialogues in progress at once.
        against: toy: the model (role) the others are compared with, turn by turn (default: the first).
    """

    method: str = "judge"
    benchmark: str = "auto"
    limit: int = 0
    temperature: float | None = None
    max_tokens: int = 1024
    top_p: float = 1.0
    seed: int | None = None
    lang: str = "auto"
    judge_attempts: int = 3
    judge_max_tokens: int = 2048
    max_in_flight: int = 256
    against: str | None = None


def _check(settings: EvalSettings, models: dict[str, str]) -> list[str]:
    problems = []
    if settings.method not in METHODS:
        problems.append(f"settings.method: expected one of {', '.join(METHODS)}, got {settings.method!r}")
    if settings.method == "judge" and "judge" not in models:
        problems.append("models: method judge needs a judge model (models: {judge: NAME})")
    if not [role for role in models if role != "judge"]:
        problems.append("models: name at least one model to evaluate (models: {LABEL: MODEL})")
    if settings.against is not None and settings.against not in models:
        problems.append(f"settings.against: {settings.against!r} is not one of the models ({', '.join(models)})")
    return problems


def slug(label: str) -> str:
    """A label as a file-name part: ``SFT + DPO`` → ``sft-dpo``."""
    return re.sub(r"[^a-z0-9_.]+", "-", label.lower()).strip("-") or "model"


@register(Kind("eval", "Answer held-out dialogues turn by turn with each model's own history; score every turn.",
               EvalSettings, inputs=(Port("benchmark", "held-out scripts (toy) or a benchmark file (judge)"),),
               models=(Port("judge", "the LLM judge (method: judge)", required=False),), free_models=True,
               outputs=("results",), check=_check))
def evaluate(ctx: StageContext) -> StageResult:
    return _toy(ctx) if ctx.settings.method == "toy" else _judged(ctx)


def _toy(ctx: StageContext) -> StageResult:
    from turnwise.toy import outcomes
    from turnwise.toy_results import results_html, results_markdown

    s = ctx.settings
    scripts = read_conversations(ctx.input("benchmark"), s.limit)
    sampling = GenerationSettings(temperature=s.temperature or 0.0, top_p=s.top_p, max_tokens=s.max_tokens, seed=s.seed)
    labels = [role for role in ctx.models if role != "judge"]
    ctx.total(len(scripts) * len(labels))
    by_model, costs = {}, {}
    for label in labels:
        filename = f"answers-{slug(label)}.jsonl"
        costs[label] = generate_answers(ctx, label, scripts, filename, sampling, s.max_in_flight)
        by_model[label] = outcomes(read_stage_output(ctx.path(filename)))
    table, summary = results_markdown(by_model, against=s.against)
    ctx.path("results.md").write_text(table, encoding="utf-8")
    ctx.path("results.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    ctx.path("results.html").write_text(results_html([summary], title=f"turnwise: {ctx.name}", against=s.against),
                                        encoding="utf-8")
    line = "; ".join(f"{label}: dependent {summary[label]['dependent']:.0%}, standalone "
                     f"{summary[label]['standalone']:.0%}" for label in labels)
    return StageResult({"results": "results.md", "numbers": "results.json", "html": "results.html"},
                       f"held-out turns right: {line}",
                       counts={label: len(by_model[label]) for label in labels},
                       cost={**merge_costs(*costs.values()), "by_model": costs}, numbers=summary)


def _judged(ctx: StageContext) -> StageResult:
    from turnwise.eval import load_benchmark
    from turnwise.eval.report import build_report, write_report

    s = ctx.settings
    items = load_benchmark(ctx.input("benchmark"), s.benchmark, limit=s.limit or None)
    labels = [role for role in ctx.models if role != "judge"]
    ctx.total(len(items) * len(labels))
    costs = {label: asyncio.run(_judge_one(ctx, label, items)) for label in labels}
    records = [r for label in labels for r in read_stage_output(ctx.path(f"judgements-{slug(label)}.jsonl"))]
    report = build_report(records)
    write_report(records, ctx.path("report"), title=f"turnwise eval: {ctx.name}", report=report)
    means = {row["model"]: (row["overall"] or {}).get("mean") for row in report["single"]}
    line = "; ".join(f"{m}: {v:.2f}" if v is not None else f"{m}: —" for m, v in means.items())
    return StageResult({"results": "report/report.md", "html": "report/report.html"},
                       f"mean judge score (1–10) over {len(items)} dialogues: {line}", counts={"dialogues": len(items)},
                       cost=costs, numbers={"means": means})


async def _judge_one(ctx: StageContext, label: str, items: list[Any]) -> dict[str, Any]:
    from turnwise.eval import AnswerConfig, EvalJudgeConfig, run_eval
    from turnwise.judge.core import Judge, RetryPolicy

    s = ctx.settings
    answer = AnswerConfig(name=label, temperature=s.temperature, max_tokens=s.max_tokens, top_p=s.top_p, seed=s.seed)
    judge_config = EvalJudgeConfig(lang=s.lang)
    stores = [RecordStore(ctx.path(f"{what}-{slug(label)}.jsonl")) for what in ("answers", "judgements")]
    manifest = RunManifest(stores[1].path, "eval", {"model": label, "answer": answer.to_dict(),
                                                     "judge": judge_config.to_dict()})
    ctx.advance(stores[1].resumed)
    status, totals = "error", None
    try:
        async with ctx.open_models(label, "judge") as (model, judge_model):
            judge = Judge(judge_model, RetryPolicy(attempts=s.judge_attempts, max_tokens=s.judge_max_tokens))
            totals = await run_eval(items, model, judge, *stores, answer, judge_config, max_in_flight=s.max_in_flight,
                                    on_judgement=lambda _: ctx.advance())
        status = "complete"
    finally:
        for store in stores:
            store.close()
        manifest.finish(status, dict(stores[1].counts), totals.to_dict() if totals else {})
    return totals.to_dict()
