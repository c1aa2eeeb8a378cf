"""`turnwise eval answer|judge|report|run`: multi-turn evaluation on MT-Bench, MT-Eval, MT-Bench-101 or your own
N-turn dialogues, judged turn by turn, resumable and cached.

    turnwise eval run question.jsonl runs/eval/qwen --model Qwen/Qwen2.5-7B-Instruct --base-url URL \
        --judge-model gpt-4o --judge-base-url https://api.openai.com/v1 --judge-api-key-env OPENAI_API_KEY
    turnwise eval answer mt-bench_extended.jsonl answers.jsonl --model ./my-model --backend local
    turnwise eval judge answers.jsonl judgements.jsonl --judge-model J --judge-base-url URL
    turnwise eval judge answers.jsonl pairs.jsonl --baseline base_answers.jsonl --judge-model J ...
    turnwise eval report runs/eval/*/judgements.jsonl --out runs/eval/report
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from turnwise.cli import options as opt
from turnwise.cli import stage
from turnwise.cli.score import (
    JudgeAttempts,
    JudgeBackend,
    JudgeBaseUrl,
    JudgeConcurrency,
    JudgeKeyEnv,
    JudgeMaxTokens,
    Lang,
    TemplateDir,
)

app = typer.Typer(help="Evaluate multi-turn skill: answer turn by turn, judge every turn, report.",
                  no_args_is_help=True, rich_markup_mode="rich")

Data = Annotated[Path, typer.Argument(help="Benchmark file: MT-Bench question.jsonl, MT-Eval, MT-Bench-101, N-turn.")]
Benchmark = Annotated[str, typer.Option(help="auto, mt-bench, mt-eval, mt-bench-101 or turns (docs/eval.md).")]
References = Annotated[str, typer.Option(
    help="MT-Bench references: auto (FastChat's reference_answer/gpt-4.jsonl beside the questions), question, "
         "none, or a FastChat answer file.")]
Name = Annotated[str | None, typer.Option(help="The model's name in reports (default: --model).")]
Limit = Annotated[int | None, typer.Option(help="Only the first N dialogues.")]
Temperature = Annotated[float | None, typer.Option(
    help="One temperature for all; default: FastChat's per category (0.7 writing/roleplay, 0 math/coding/"
         "reasoning/extraction, 0.1 stem/humanities, else 0.7).")]
MaxTokens = Annotated[int, typer.Option(help="Most new tokens per answer.")]
Seed = Annotated[int | None, typer.Option(help="Sampling seed, where the backend honours one.")]
JudgeModel = Annotated[str, typer.Option("--judge-model", help="Judge: served name, hub id or local path.")]
RetryFailed = Annotated[bool, typer.Option(help="Try again the records that failed in an earlier run.")]
MaxInFlight = Annotated[int, typer.Option(help="Dialogues in progress at once.")]


def _answer_config(name, temperature, max_tokens, seed, model: str):  # -> AnswerConfig
    from turnwise.eval.answer import AnswerConfig

    return AnswerConfig(name=name or Path(model).name or model, temperature=temperature, max_tokens=max_tokens,
                        seed=seed)


def _judge_parts(judge_model, judge_backend, judge_base_url, judge_api_key_env, judge_concurrency,
                 judge_attempts, judge_max_tokens, lang, template_dir, timeout, max_retries) -> dict[str, Any]:
    from turnwise.eval.judge import EvalJudgeConfig
    from turnwise.judge.core import RetryPolicy
    from turnwise.judge.templates import resolve_lang

    resolve_lang(lang)  # refuse an unknown language before anything runs
    spec = opt.build_spec(judge_model, judge_backend, judge_base_url, judge_api_key_env, judge_concurrency,
                          timeout, max_retries, None, "auto")
    return {"spec": spec, "policy": RetryPolicy(attempts=judge_attempts, max_tokens=judge_max_tokens),
            "search": (str(template_dir),) if template_dir else (), "config": EvalJudgeConfig(lang=lang)}


def _judge_config(parts: dict[str, Any]) -> dict[str, Any]:
    return {"judge": parts["spec"].to_dict(), "policy": parts["policy"].to_dict(), "config": parts["config"].to_dict()}


def _summary(store: Any, cost: dict[str, Any], what: str) -> None:
    # reasons quote [[rating]], which is rich markup
    stage.print_summary(store, f"; calls {cost.get('calls', 0)}, cached {cost.get('cached', 0)}, "
                               f"failed {cost.get('failed', 0)}", new=f"new {what}", top=3, escape_reasons=True)


@app.command("answer")
def answer(
    data: Data,
    output: Annotated[Path, typer.Argument(help="Answer records (JSONL); re-running resumes it.")],
    model: opt.Model,
    benchmark: Benchmark = "auto",
    references: References = "auto",
    name: Name = None,
    limit: Limit = None,
    temperature: Temperature = None,
    max_tokens: MaxTokens = 1024,
    seed: Seed = None,
    backend: opt.Backend = "auto",
    base_url: opt.BaseUrl = None,
    api_key_env: opt.ApiKeyEnv = None,
    concurrency: opt.Concurrency = 16,
    timeout: opt.Timeout = 120.0,
    max_retries: opt.MaxRetries = 5,
    chat_template: opt.ChatTemplate = None,
    dtype: opt.Dtype = "auto",
    retry_failed: RetryFailed = False,
    max_in_flight: MaxInFlight = 256,
    cache: opt.Cache = None,
    no_cache: opt.NoCache = False,
) -> None:
    """Answer every dialogue turn by turn with the model's own history (or the benchmark's gold history)."""
    from turnwise.eval.benchmarks import describe_items, load_benchmark
    from turnwise.records import RecordStore, RunManifest

    items = load_benchmark(data, benchmark, references=references, limit=limit)
    spec = opt.build_spec(model, backend, base_url, api_key_env, concurrency, timeout, max_retries, chat_template,
                          dtype)
    config = _answer_config(name, temperature, max_tokens, seed, model)
    cache_path = stage.cache_path(cache, no_cache)
    store = RecordStore(output, retry_failed=retry_failed)
    manifest = RunManifest(output, "eval answer", {
        "data": str(data), "benchmark": describe_items(items), "model": spec.to_dict(), "answer": config.to_dict(),
        "cache": str(cache_path) if cache_path else None, "max_in_flight": max_in_flight})
    asyncio.run(_answer(spec, config, items, store, manifest, cache_path, max_in_flight))


async def _answer(spec, config, items, store, manifest, cache_path, max_in_flight) -> None:
    from turnwise.eval.answer import run_answer

    async with stage.open_models([spec], cache_path) as [model]:
        with (stage.stage_run(store, manifest) as run,
              stage.record_progress("eval answer", len(items), store.resumed) as on_record):
            totals = await run_answer(items, model, store, config, max_in_flight=max_in_flight, on_record=on_record)
            run.complete(totals.cost.to_dict())
    _summary(store, run.cost, "answers")


@app.command("judge")
def judge(
    answers: Annotated[Path, typer.Argument(help="Answer records written by `turnwise eval answer`.")],
    output: Annotated[Path, typer.Argument(help="Judgement records (JSONL); re-running resumes it.")],
    judge_model: JudgeModel,
    baseline: Annotated[Path | None, typer.Option(
        help="A baseline's answer records: compare pairwise (both orders) instead of grading.")] = None,
    judge_backend: JudgeBackend = "auto",
    judge_base_url: JudgeBaseUrl = None,
    judge_api_key_env: JudgeKeyEnv = None,
    judge_concurrency: JudgeConcurrency = 16,
    judge_attempts: JudgeAttempts = 3,
    judge_max_tokens: JudgeMaxTokens = 2048,
    lang: Lang = "auto",
    template_dir: TemplateDir = None,
    timeout: opt.Timeout = 120.0,
    max_retries: opt.MaxRetries = 5,
    retry_failed: RetryFailed = False,
    max_in_flight: MaxInFlight = 64,
    cache: opt.Cache = None,
    no_cache: opt.NoCache = False,
) -> None:
    """Grade every judged turn 1–10 with an N-turn prompt, or compare with a baseline in both orders."""
    from turnwise.eval.answer import load_answers
    from turnwise.records import RecordStore, RunManifest

    parts = _judge_parts(judge_model, judge_backend, judge_base_url, judge_api_key_env, judge_concurrency,
                         judge_attempts, judge_max_tokens, lang, template_dir, timeout, max_retries)
    records = load_answers(answers)
    base = {r["id"]: r for r in load_answers(baseline)} if baseline else None
    cache_path = stage.cache_path(cache, no_cache)
    store = RecordStore(output, retry_failed=retry_failed)
    manifest = RunManifest(output, "eval judge", {
        "answers": str(answers), "baseline": str(baseline) if baseline else None, **_judge_config(parts),
        "cache": str(cache_path) if cache_path else None})
    asyncio.run(_judge(parts, records, base, store, manifest, cache_path, max_in_flight))


async def _judge(parts, records, base, store, manifest, cache_path, max_in_flight) -> None:
    from turnwise.eval.judge import run_judge
    from turnwise.eval.pairwise import run_pairwise
    from turnwise.judge.core import Judge

    async with stage.open_models([parts["spec"]], cache_path) as [model]:
        with stage.stage_run(store, manifest) as run:
            judge = Judge(model, parts["policy"], parts["search"])
            with stage.record_progress("eval judge", len(records), store.resumed) as on_record:
                kwargs = {"max_in_flight": max_in_flight, "on_record": on_record}
                if base is None:
                    totals = await run_judge(records, judge, store, parts["config"], **kwargs)
                else:
                    totals = await run_pairwise(records, base, judge, store, parts["config"], **kwargs)
            run.complete(totals.cost.to_dict())
    _summary(store, run.cost, "judgements")


@app.command("report")
def report(
    judgements: Annotated[list[Path], typer.Argument(help="Judgement files (single and/or pairwise), any number.")],
    out: Annotated[Path, typer.Option(help="Folder for report.json, report.md, samples.jsonl, report.html.")] = Path(
        "eval-report"),
    title: Annotated[str, typer.Option(help="The HTML report's title.")] = "turnwise eval",
) -> None:
    """Print the Markdown table and write the JSON, per-sample JSONL and HTML (plots) reports."""
    from turnwise.eval.report import load_records

    _report(load_records(judgements), out, title, [str(p) for p in judgements])


def _report(records: list[dict[str, Any]], out: Path, title: str, sources: list[str]) -> None:
    from turnwise.eval.report import build_report, markdown, write_report

    built = build_report(records)
    paths = write_report(records, out, title=title, sources=sources, report=built)
    typer.echo(markdown(built))
    opt.stderr.print(f"wrote {', '.join(str(p) for p in paths.values())}")


@app.command("run")
def run(
    data: Data,
    out_dir: Annotated[Path, typer.Argument(help="Folder for answers.jsonl, judgements.jsonl and report/.")],
    model: opt.Model,
    judge_model: JudgeModel,
    benchmark: Benchmark = "auto",
    references: References = "auto",
    name: Name = None,
    limit: Limit = None,
    temperature: Temperature = None,
    max_tokens: MaxTokens = 1024,
    seed: Seed = None,
    backend: opt.Backend = "auto",
    base_url: opt.BaseUrl = None,
    api_key_env: opt.ApiKeyEnv = None,
    concurrency: opt.Concurrency = 16,
    chat_template: opt.ChatTemplate = None,
    dtype: opt.Dtype = "auto",
    judge_backend: JudgeBackend = "auto",
    judge_base_url: JudgeBaseUrl = None,
    judge_api_key_env: JudgeKeyEnv = None,
    judge_concurrency: JudgeConcurrency = 16,
    judge_attempts: JudgeAttempts = 3,
    judge_max_tokens: JudgeMaxTokens = 2048,
    lang: Lang = "auto",
    template_dir: TemplateDir = None,
    timeout: opt.Timeout = 120.0,
    max_retries: opt.MaxRetries = 5,
    retry_failed: RetryFailed = False,
    max_in_flight: MaxInFlight = 256,
    cache: opt.Cache = None,
    no_cache: opt.NoCache = False,
) -> None:
    """Answer and judge each dialogue in one pass (judging starts as soon as a dialogue is answered), then report."""
    from turnwise.eval.answer import check_same_model
    from turnwise.eval.benchmarks import describe_items, load_benchmark
    from turnwise.records import RecordStore, RunManifest, read_stage_output

    items = load_benchmark(data, benchmark, references=references, limit=limit)
    spec = opt.build_spec(model, backend, base_url, api_key_env, concurrency, timeout, max_retries, chat_template,
                          dtype)
    parts = _judge_parts(judge_model, judge_backend, judge_base_url, judge_api_key_env, judge_concurrency,
                         judge_attempts, judge_max_tokens, lang, template_dir, timeout, max_retries)
    config = _answer_config(name, temperature, max_tokens, seed, model)
    cache_path = stage.cache_path(cache, no_cache)
    check_same_model(out_dir / "answers.jsonl", config.name)
    stores = [RecordStore(out_dir / f, retry_failed=retry_failed) for f in ("answers.jsonl", "judgements.jsonl")]
    common = {"data": str(data), "benchmark": describe_items(items), "cache": str(cache_path) if cache_path else None}
    manifests = [RunManifest(stores[0].path, "eval answer", {**common, "model": spec.to_dict(),
                                                             "answer": config.to_dict()}),
                 RunManifest(stores[1].path, "eval judge", {**common, **_judge_config(parts)})]
    asyncio.run(_run(spec, parts, config, items, stores, manifests, cache_path, max_in_flight))
    _report(read_stage_output(stores[1].path), out_dir / "report", f"turnwise eval: {config.name}",
            [str(stores[1].path)])


async def _run(spec, parts, config, items, stores, manifests, cache_path, max_in_flight) -> None:
    from turnwise.eval.pipeline import EvalTotals, run_eval
    from turnwise.judge.core import Judge

    totals = EvalTotals()
    async with stage.open_models([spec, parts["spec"]], cache_path) as [model, judge_model]:
        with (stage.stage_run(stores[0], manifests[0]) as answered,
              stage.stage_run(stores[1], manifests[1]) as judged):
            answered.cost, judged.cost = totals.answer.cost.to_dict(), totals.judge.cost.to_dict()  # if it fails
            judge = Judge(judge_model, parts["policy"], parts["search"])
            with stage.record_progress("eval run", len(items), stores[1].resumed) as on_judgement:
                totals = await run_eval(items, model, judge, *stores, config, parts["config"],
                                        max_in_flight=max_in_flight, on_judgement=on_judgement)
            answered.complete(totals.answer.cost.to_dict())
            judged.complete(totals.judge.cost.to_dict())
    _summary(stores[0], answered.cost, "answers")
    _summary(stores[1], judged.cost, "judgements")
