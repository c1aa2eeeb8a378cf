"""`turnwise detect`: label each user turn after the first as dependent on its history or standalone.

    turnwise detect dialogues.jsonl detections.jsonl
    turnwise detect dialogues.jsonl detections.jsonl --judge-model M --base-url http://127.0.0.1:8000/v1

Cues alone need no model. With ``--judge-model`` an LLM judge confirms or rejects the cue decision of
the turns ``--judge-on`` selects; its calls go through the response cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from turnwise.cli import options as opt
from turnwise.cli import stage
from turnwise.data.formats import read_records
from turnwise.data.schema import Conversation, PreferencePair
from turnwise.detect.judge import JUDGE_ON, JudgeConfig
from turnwise.detect.stage import DetectConfig, DetectResult, run_detect
from turnwise.errors import ConfigError
from turnwise.models.base import GenerationSettings
from turnwise.records import RecordStore, RunManifest

JudgeModel = Annotated[
    str | None, typer.Option("--judge-model", help="LLM judge (hub id, local path or served name); cues only if unset.")
]


def detect(
    input: Annotated[Path, typer.Argument(metavar="IN", help="Conversations (any supported format).")],
    output: Annotated[Path, typer.Argument(metavar="OUT", help="Output records (JSONL); re-running resumes it.")],
    lang: Annotated[str, typer.Option(help="Cue language: auto (per conversation), en or zh.")] = "auto",
    judge_model: JudgeModel = None,
    judge_on: Annotated[str, typer.Option(help="Turns the judge sees: dependent, all, or uncertain.")] = "dependent",
    judge_weight: Annotated[float, typer.Option(help="Log-odds the judge's verdict adds to the cue score.")] = 5.0,
    backend: opt.Backend = "auto",
    base_url: opt.BaseUrl = None,
    api_key_env: opt.ApiKeyEnv = None,
    concurrency: opt.Concurrency = 16,
    timeout: opt.Timeout = 120.0,
    max_retries: opt.MaxRetries = 5,
    chat_template: opt.ChatTemplate = None,
    dtype: opt.Dtype = "auto",
    max_tokens: Annotated[int, typer.Option(help="Most new tokens per judge reply.")] = 256,
    from_: Annotated[str | None, typer.Option("--from", help="Input format; detected when left out.")] = None,
    skip_invalid: Annotated[bool, typer.Option(help="Skip malformed input records and report them.")] = False,
    retry_failed: Annotated[bool, typer.Option(help="Ask the judge again where it failed in an earlier run.")] = False,
    max_in_flight: Annotated[int, typer.Option(help="Conversations in work at once.")] = 64,
    cache: opt.Cache = None,
    no_cache: opt.NoCache = False,
) -> None:
    """Find the user turns that only make sense with their history: cues in English and Chinese, optional judge."""
    if lang not in ("auto", "en", "zh") or judge_on not in JUDGE_ON:
        raise ConfigError(f"--lang must be auto, en or zh and --judge-on one of {', '.join(JUDGE_ON)}")
    spec = None
    judge = None
    if judge_model:
        spec = opt.build_spec(judge_model, backend, base_url, api_key_env, concurrency, timeout, max_retries,
                              chat_template, dtype)
        judge = JudgeConfig(judge_on, judge_weight, lang=None if lang == "auto" else lang,
                            settings=GenerationSettings(temperature=0, max_tokens=max_tokens))
    config = DetectConfig(lang=None if lang == "auto" else lang, judge=judge)
    items, skipped = read_records(input, from_, skip_invalid=skip_invalid)
    cache_path = stage.cache_path(cache, no_cache or spec is None)
    manifest_config = {"input": str(input), "lang": lang, "weights": dict(config.detector.weights),
                       "bias": config.detector.bias, "judge_model": spec.to_dict() if spec else None,
                       "judge_on": judge_on, "judge_weight": judge_weight,
                       "cache": str(cache_path) if cache_path else None}
    store = RecordStore(output, retry_failed=retry_failed)
    manifest = RunManifest(output, "detect", manifest_config)
    stage.resuming(store)
    total = opt.count_lines(input)
    asyncio.run(_run(spec, config, _conversations(items), store, manifest, cache_path, max_in_flight, skipped, total))


def _conversations(items: Iterable[Any]) -> Iterator[Conversation]:
    for item in items:
        if isinstance(item, PreferencePair):
            raise ConfigError(f"detect reads conversations, not preference pairs (record {item.id!r})")
        yield item


async def _run(spec, config, conversations, store, manifest, cache_path, max_in_flight, skipped, total) -> None:
    async with stage.open_models([spec], cache_path) as [judge_model]:
        with (stage.stage_run(store, manifest, skipped=skipped) as run,
              stage.record_progress("detect", total, store.resumed) as on_record):
            run.fields["turns"] = {}
            result = await run_detect(conversations, store, config, judge_model, max_in_flight=max_in_flight,
                                      on_record=on_record)
            run.fields["turns"] = _turn_counts(result)
            run.complete(result.cost.to_dict())
    stage.print_summary(store, f"; turns {run.fields['turns']}")


def _turn_counts(result: DetectResult) -> dict[str, int]:
    return {"labelled": result.turns, "dependent": result.dependent, "judged": result.judged,
            "judge_failures": result.judge_failures}
