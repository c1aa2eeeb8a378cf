"""`turnwise generate`: answer every conversation in a file with a model, resumably and cached."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from turnwise.cli import options as opt
from turnwise.cli import stage
from turnwise.data.formats import read_records
from turnwise.models.base import GenerationSettings
from turnwise.records import RecordStore, RunManifest
from turnwise.stages.generate import run_generate


def generate(
    input: Annotated[Path, typer.Argument(help="Conversations (any supported format, JSONL or a JSON array).")],
    output: Annotated[Path, typer.Argument(help="Output records (JSONL); re-running resumes it.")],
    model: opt.Model,
    backend: opt.Backend = "auto",
    base_url: opt.BaseUrl = None,
    api_key_env: opt.ApiKeyEnv = None,
    concurrency: opt.Concurrency = 16,
    timeout: opt.Timeout = 120.0,
    max_retries: opt.MaxRetries = 5,
    chat_template: opt.ChatTemplate = None,
    dtype: opt.Dtype = "auto",
    temperature: Annotated[float, typer.Option(help="0 = greedy.")] = 0.7,
    top_p: Annotated[float, typer.Option()] = 1.0,
    max_tokens: Annotated[int, typer.Option(help="Most new tokens per answer.")] = 512,
    n: Annotated[int, typer.Option(help="Samples per answer (single-turn conversations only).")] = 1,
    seed: Annotated[int | None, typer.Option(help="Sampling seed, where the backend honours one.")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Input format; detected when left out.")] = None,
    skip_invalid: Annotated[bool, typer.Option(help="Skip malformed input records and report them.")] = False,
    retry_failed: Annotated[bool, typer.Option(help="Try again the records that failed in an earlier run.")] = False,
    max_in_flight: Annotated[int, typer.Option(help="Conversations answered at once.")] = 256,
    cache: opt.Cache = None,
    no_cache: opt.NoCache = False,
) -> None:
    """Answer each conversation's last user turn, then each follow-up, with the model's own history."""
    spec = opt.build_spec(
        model, backend, base_url, api_key_env, concurrency, timeout, max_retries, chat_template, dtype
    )
    settings = GenerationSettings(temperature=temperature, top_p=top_p, max_tokens=max_tokens, n=n, seed=seed)
    conversations, skipped = read_records(input, from_, skip_invalid=skip_invalid)
    cache_path = stage.cache_path(cache, no_cache)
    config = {"input": str(input), "model": spec.to_dict(), "settings": settings.to_dict(),
              "cache": str(cache_path) if cache_path else None, "max_in_flight": max_in_flight}
    store = RecordStore(output, retry_failed=retry_failed)
    manifest = RunManifest(output, "generate", config)
    stage.resuming(store)
    total = opt.count_lines(input)
    asyncio.run(_run(spec, settings, conversations, store, manifest, cache_path, max_in_flight, skipped, total))


async def _run(spec, settings, conversations, store, manifest, cache_path, max_in_flight, skipped, total) -> None:
    async with stage.open_models([spec], cache_path) as [chat_model]:
        with (stage.stage_run(store, manifest, skipped=skipped) as run,
              stage.record_progress("generate", total, store.resumed) as on_record):
            result = await run_generate(conversations, chat_model, store, settings, max_in_flight=max_in_flight,
                                        on_record=on_record)
            run.complete(result.cost.to_dict())
    cost = run.cost
    stage.print_summary(store, f"; calls {cost.get('calls', 0)}, cached {cost.get('cached', 0)}, "
                               f"failed {cost.get('failed', 0)}, "
                               f"tokens {cost.get('prompt_tokens', 0)}+{cost.get('completion_tokens', 0)}")
