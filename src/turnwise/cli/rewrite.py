"""`turnwise rewrite`: rewrite follow-ups into self-contained queries, and score rewriters against humans.

    turnwise rewrite IN OUT --model M                     # short for `turnwise rewrite run IN OUT --model M`
    turnwise rewrite run canard_dev.json rewrites.jsonl --from canard --model M --base-url URL
    turnwise rewrite eval --data canard_dev.json --format canard                        # the baseline alone
    turnwise rewrite eval --data canard_dev.json --format canard --rewriter M --base-url URL
    turnwise rewrite eval --data zh_rewrite_dev.txt --format zh-rewrite --predictions rewrites.txt

`run` is the default subcommand: ``turnwise rewrite IN OUT`` is ``turnwise rewrite run IN OUT`` (an input
file literally named ``eval`` or ``run`` needs the explicit ``run``). Every model call goes through the
response cache.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from typer.core import TyperGroup

from turnwise.cli import options as opt
from turnwise.cli import stage


class _RunByDefault(TyperGroup):
    """A group whose first argument, when it names no subcommand, goes to ``run``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_RunByDefault, no_args_is_help=True, add_completion=False,
                  help="Rewrite follow-ups into self-contained queries (run), or score rewrites (eval). "
                       "`turnwise rewrite IN OUT ...` is short for `turnwise rewrite run IN OUT ...`.")

Variant = Annotated[str, typer.Option(help="Rewrite prompt: cot (reason, then rewrite) or direct.")]
Gate = Annotated[str, typer.Option(help="rules: no call for turns the detector finds standalone; always: call "
                                        "for every turn with context. First turns are never sent.")]
Lang = Annotated[str, typer.Option(help="Prompt language: auto (the question's), en or zh.")]
FewShot = Annotated[bool, typer.Option("--few-shot/--no-few-shot", help="Show worked examples in the prompt.")]
RewriteTokens = Annotated[int, typer.Option("--rewrite-max-tokens", help="Most tokens per rewriter reply.")]
Attempts = Annotated[int, typer.Option(help="Tries per turn (the first greedy, later ones sampled).")]
TemplateDir = Annotated[Path | None, typer.Option(help="Folder of templates that replace the shipped ones.")]
Limit = Annotated[int | None, typer.Option(help="Only the first N turns (rewrite data) or conversations.")]
From = Annotated[str | None, typer.Option(
    "--from", help="Input format: canard, cast, mudoco, zh-rewrite, or a conversation format (detected if unset).")]


def rewrite_config(variant: str, gate: str, lang: str, few_shot: bool, max_tokens: int, attempts: int,
                   template_dir: Path | None) -> Any:
    from turnwise.rag.rewriter import RewriteConfig

    return RewriteConfig(variant=variant, gate=gate, lang=lang, few_shot=few_shot, max_tokens=max_tokens,
                         attempts=attempts, search_path=(str(template_dir),) if template_dir else ())


@app.command("run")
def run(
    input: Annotated[Path, typer.Argument(metavar="IN", help="Conversations, or rewrite data (see --from).")],
    output: Annotated[Path, typer.Argument(metavar="OUT", help="One record per user turn (JSONL); resumable.")],
    model: opt.Model,
    from_: From = None,
    variant: Variant = "cot",
    gate: Gate = "rules",
    lang: Lang = "auto",
    few_shot: FewShot = True,
    rewrite_max_tokens: RewriteTokens = 384,
    attempts: Attempts = 1,
    template_dir: TemplateDir = None,
    limit: Limit = None,
    backend: opt.Backend = "auto",
    base_url: opt.BaseUrl = None,
    api_key_env: opt.ApiKeyEnv = None,
    concurrency: opt.Concurrency = 16,
    timeout: opt.Timeout = 120.0,
    max_retries: opt.MaxRetries = 5,
    chat_template: opt.ChatTemplate = None,
    dtype: opt.Dtype = "auto",
    skip_invalid: Annotated[bool, typer.Option(help="Skip malformed conversations and report them.")] = False,
    retry_failed: Annotated[bool, typer.Option(help="Rewrite again the turns that failed before.")] = False,
    max_in_flight: Annotated[int, typer.Option(help="Turns in work at once.")] = 64,
    cache: opt.Cache = None,
    no_cache: opt.NoCache = False,
) -> None:
    """Rewrite every user turn into a self-contained query (temperature 0; gated by the detector)."""
    from turnwise.rag.datasets import read_turns
    from turnwise.records import RecordStore

    config = rewrite_config(variant, gate, lang, few_shot, rewrite_max_tokens, attempts, template_dir)
    spec = opt.build_spec(model, backend, base_url, api_key_env, concurrency, timeout, max_retries, chat_template,
                          dtype)
    turns, skipped = read_turns(input, from_, skip_invalid=skip_invalid, limit=limit)
    cache_path = stage.cache_path(cache, no_cache)
    store = RecordStore(output, retry_failed=retry_failed)
    stage.resuming(store)
    settings = {"input": str(input), "format": from_, "limit": limit, "model": spec.to_dict(),
                "cache": str(cache_path) if cache_path else None, "max_in_flight": max_in_flight}
    statuses = asyncio.run(_rewrite(spec, config, turns, store, settings, cache_path, max_in_flight, skipped))
    stage.print_summary(store, "; rewrites: " + _statuses(statuses))


def _statuses(counts: Counter[str] | dict[str, int]) -> str:
    return ", ".join(f"{k} {counts.get(k, 0)}" for k in ("rewritten", "unchanged", "skipped", "failed"))


async def _rewrite(spec, config, turns, store, settings, cache_path, max_in_flight, skipped) -> Counter[str]:
    from turnwise.rag.rewriter import Rewriter
    from turnwise.rag.stage import run_rewrite
    from turnwise.records import RunManifest

    async with stage.open_models([spec], cache_path) as [chat_model]:
        rewriter = Rewriter(chat_model, config)
        manifest = RunManifest(store.path, "rewrite", {**settings, "rewriter": rewriter.describe()})
        with (stage.stage_run(store, manifest, skipped=skipped) as run,
              stage.record_progress("rewrite", None, store.resumed) as on_record):
            run.fields["rewrites"] = {}
            result = await run_rewrite(turns, rewriter, store, max_in_flight=max_in_flight, on_record=on_record)
            run.fields["rewrites"] = dict(result.statuses)
            run.complete(result.cost.to_dict())
    return result.statuses


@app.command("eval")
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="Turns with human rewrites.")],
    format: Annotated[str, typer.Option("--format", help="canard, cast, mudoco or zh-rewrite.")],
    rewriter: Annotated[str | None, typer.Option(
        "--rewriter", help="Rewriting model (hub id, local path, served name); any backend.")] = None,
    predictions: Annotated[Path | None, typer.Option(
        help="Rewrites to score instead: `turnwise rewrite` records, or plain text, one line per turn.")] = None,
    output: Annotated[Path | None, typer.Option(
        help="Keep the rewriter's records here (resumable), the report in OUT.manifest.json.")] = None,
    limit: Limit = None,
    variant: Variant = "cot",
    gate: Gate = "rules",
    lang: Lang = "auto",
    few_shot: FewShot = True,
    rewrite_max_tokens: RewriteTokens = 384,
    attempts: Attempts = 1,
    template_dir: TemplateDir = None,
    backend: opt.Backend = "auto",
    base_url: opt.BaseUrl = None,
    api_key_env: opt.ApiKeyEnv = None,
    concurrency: opt.Concurrency = 16,
    timeout: opt.Timeout = 120.0,
    max_retries: opt.MaxRetries = 5,
    chat_template: opt.ChatTemplate = None,
    dtype: opt.Dtype = "auto",
    max_in_flight: Annotated[int, typer.Option(help="Turns in work at once.")] = 64,
    cache: opt.Cache = None,
    no_cache: opt.NoCache = False,
) -> None:
    """BLEU, ROUGE-1/L and exact match against the human rewrites, next to the unchanged-question baseline."""
    from turnwise.errors import ConfigError
    from turnwise.rag.datasets import read_rewrite_data
    from turnwise.rag.evaluate import evaluate_rewrites, read_predictions

    if rewriter and predictions:
        raise ConfigError("give --rewriter or --predictions, not both")
    examples = read_rewrite_data(data, format, limit=limit)
    predicted, statuses = None, None
    if predictions is not None:
        predicted = read_predictions(predictions, examples)
    elif rewriter:
        config = rewrite_config(variant, gate, lang, few_shot, rewrite_max_tokens, attempts, template_dir)
        spec = opt.build_spec(rewriter, backend, base_url, api_key_env, concurrency, timeout, max_retries,
                              chat_template, dtype)
        predicted, statuses = _predict(spec, config, examples, data, format, output, stage.cache_path(cache, no_cache),
                                       max_in_flight)
    report = evaluate_rewrites(examples, predicted, statuses=statuses)
    if output is not None and rewriter:
        _add_report(output, report.to_dict())
    typer.echo(report.table())
    if statuses is not None:
        typer.echo(f"rewriter: {_statuses(statuses)} (a failed turn is scored as the question itself)")
    typer.echo(report.summary_line())


def _predict(spec, config, examples, data, fmt, output, cache_path, max_in_flight) -> tuple[dict, dict]:
    from turnwise.data.formats import SkipReport
    from turnwise.records import RecordStore, read_stage_output

    with tempfile.TemporaryDirectory(prefix="turnwise-rewrite-") as tmp:
        path = output or Path(tmp) / "rewrites.jsonl"
        store = RecordStore(path)
        settings = {"data": str(data), "format": fmt, "limit": len(examples), "model": spec.to_dict(),
                    "cache": str(cache_path) if cache_path else None}
        asyncio.run(_rewrite(spec, config, iter(examples), store, settings, cache_path, max_in_flight,
                             SkipReport(str(data), fmt)))
        wanted = {e.id for e in examples}
        records = [r for r in read_stage_output(path) if r["id"] in wanted]
    statuses = Counter(r["rewrite_status"] for r in records)
    return {r["id"]: r["query"] for r in records}, dict(statuses)


def _add_report(output: Path, report: dict[str, Any]) -> None:
    import json

    from turnwise.records import atomic_write_text, manifest_path

    path = manifest_path(output)
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["report"] = report
    atomic_write_text(path, json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n")
