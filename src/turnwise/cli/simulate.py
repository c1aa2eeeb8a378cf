"""`turnwise simulate` (self-play dialogues) and `turnwise ask-data` (ask-model training data).

    turnwise ask-data sharegpt.json ask.jsonl --end-marker "[END]"
    turnwise simulate --seeds seeds.txt -o dialogues.jsonl --turns 8 \\
        --user-model runs/ask --user-backend local \\
        --assistant-model Qwen/Qwen2.5-7B-Instruct --assistant-base-url http://127.0.0.1:8000/v1

Every model call goes through the response cache, and the output is resumable: after a crash the same
command skips the finished dialogues and answers the calls that had finished from the cache.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from turnwise.cli import options as opt
from turnwise.cli import stage

_ROLE_HELP = "Hub id or local path (local, vllm), or the served name (openai)"


def _spec(model: str, backend: str, base_urls: list[str] | None, api_key_env: str | None, common: dict) -> Any:
    return opt.build_spec(model, backend, base_urls, api_key_env, common["concurrency"], common["timeout"],
                          common["max_retries"], common["chat_template"], common["dtype"])


def _read_terms(path: Path | None) -> list[str]:
    if path is None:
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def simulate(
    seeds: Annotated[Path, typer.Option(help="Seed first turns: a dialogue file (first user turn) or .txt lines.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output records (JSONL); re-running resumes it.")],
    user_model: Annotated[str, typer.Option(help=f"User simulator. {_ROLE_HELP}.")],
    assistant_model: Annotated[str, typer.Option(help=f"Assistant. {_ROLE_HELP}.")],
    user_backend: opt.Backend = "auto",
    assistant_backend: opt.Backend = "auto",
    base_url: opt.BaseUrl = None,
    user_base_url: Annotated[list[str] | None, typer.Option(help="The user model's endpoint(s).")] = None,
    assistant_base_url: Annotated[list[str] | None, typer.Option(help="The assistant's endpoint(s).")] = None,
    user_api_key_env: Annotated[str | None, typer.Option(help="Variable holding the user model's key.")] = None,
    assistant_api_key_env: Annotated[str | None, typer.Option(help="Variable holding the assistant's key.")] = None,
    concurrency: opt.Concurrency = 16,
    timeout: opt.Timeout = 120.0,
    max_retries: opt.MaxRetries = 5,
    user_chat_template: Annotated[str | None, typer.Option(help="Chat template for the user model.")] = None,
    assistant_chat_template: Annotated[str | None, typer.Option(help="Chat template for the assistant.")] = None,
    dtype: opt.Dtype = "auto",
    mode: Annotated[str, typer.Option(help="ask: a trained ask model; prompted: an instruction model told "
                                           "to play the user.")] = "ask",
    turns: Annotated[int, typer.Option(help="Assistant answers per dialogue.")] = 8,
    min_turns: Annotated[int, typer.Option(help="Keep a dialogue that ends early only with this many.")] = 2,
    max_regenerations: Annotated[int, typer.Option(help="Tries again for a filtered user turn.")] = 3,
    lang: Annotated[str, typer.Option(help="Simulator prompt language: auto (from each seed), en, zh.")] = "auto",
    end_marker: Annotated[str | None, typer.Option(help="Text with which the simulator ends, e.g. [END].")] = None,
    user_system: Annotated[str | None, typer.Option(help="Simulator system prompt (text or file).")] = None,
    opener: Annotated[str | None, typer.Option(help="Simulator opener message (text or file).")] = None,
    assistant_system: Annotated[str | None, typer.Option(help="Assistant system prompt for seeds without one.")]
    = None,
    user_temperature: Annotated[float, typer.Option()] = 1.0,
    user_top_p: Annotated[float, typer.Option()] = 0.9,
    user_max_tokens: Annotated[int, typer.Option(help="Most new tokens per user turn.")] = 256,
    temperature: Annotated[float, typer.Option(help="Assistant sampling temperature.")] = 0.7,
    top_p: Annotated[float, typer.Option(help="Assistant nucleus mass.")] = 1.0,
    max_tokens: Annotated[int, typer.Option(help="Most new tokens per answer.")] = 1024,
    min_chars: Annotated[int, typer.Option(help="Shorter user turns are filtered (too_short).")] = 3,
    near_duplicate: Annotated[float, typer.Option(help="Jaccard at which a user turn is a near-duplicate.")] = 0.8,
    sensitive_terms: Annotated[Path | None, typer.Option(help="File of terms (one per line) that filter a turn.")]
    = None,
    disable_filter: Annotated[list[str] | None, typer.Option(help="Filter to switch off (repeatable).")] = None,
    seed: Annotated[int, typer.Option(help="Run seed; each dialogue's seed derives from it and its id.")] = 0,
    seed_scope: Annotated[str, typer.Option(help="auto, dialogue or attempt (see SimulateConfig).")] = "auto",
    max_in_flight: Annotated[int, typer.Option(help="Dialogues at once; well above --concurrency keeps the "
                                                    "server busy to the end.")] = 1024,
    from_: Annotated[str | None, typer.Option("--from", help="Seed file format (text, openai, ...).")] = None,
    skip_invalid: Annotated[bool, typer.Option(help="Skip malformed seed records and report them.")] = False,
    retry_failed: Annotated[bool, typer.Option(help="Try again the dialogues that failed before.")] = False,
    cache: opt.Cache = None,
    no_cache: opt.NoCache = False,
) -> None:
    """Grow seed first turns into multi-turn dialogues: a user simulator and an assistant take turns."""
    from turnwise.models.base import GenerationSettings
    from turnwise.simulate.engine import SimulateConfig
    from turnwise.simulate.filters import FilterConfig

    common = {"concurrency": concurrency, "timeout": timeout, "max_retries": max_retries, "dtype": dtype}
    user_spec = _spec(user_model, user_backend, user_base_url or base_url, user_api_key_env,
                      {**common, "chat_template": user_chat_template})
    assistant_spec = _spec(assistant_model, assistant_backend, assistant_base_url or base_url,
                           assistant_api_key_env, {**common, "chat_template": assistant_chat_template})
    filters = FilterConfig(min_chars=min_chars, near_duplicate=near_duplicate,
                           sensitive_terms=_read_terms(sensitive_terms), disabled=disable_filter or [])
    cfg = SimulateConfig(
        turns=turns, min_turns=min_turns, max_regenerations=max_regenerations, mode=mode, lang=lang,
        end_marker=end_marker, user_system=user_system, opener=opener, assistant_system=assistant_system,
        user_settings=GenerationSettings(temperature=user_temperature, top_p=user_top_p, max_tokens=user_max_tokens),
        assistant_settings=GenerationSettings(temperature=temperature, top_p=top_p, max_tokens=max_tokens),
        filters=filters, seed=seed, seed_scope=seed_scope, max_in_flight=max_in_flight,
    )
    cache_path = stage.cache_path(cache, no_cache)
    _simulate(seeds, output, from_, skip_invalid, retry_failed, user_spec, assistant_spec, cfg, cache_path)


def _simulate(seeds, output, fmt, skip_invalid, retry_failed, user_spec, assistant_spec, cfg, cache_path) -> None:
    from turnwise.records import RecordStore, RunManifest
    from turnwise.simulate.seeds import read_seeds

    seed_iter, skipped = read_seeds(seeds, fmt, skip_invalid=skip_invalid)
    config = {"seeds": str(seeds), "user_model": user_spec.to_dict(), "assistant_model": assistant_spec.to_dict(),
              "simulate": cfg.to_dict(), "cache": str(cache_path) if cache_path else None}
    store = RecordStore(output, retry_failed=retry_failed)
    manifest = RunManifest(output, "simulate", config)
    stage.resuming(store, "dialogues")
    asyncio.run(_run(user_spec, assistant_spec, cfg, seed_iter, store, manifest, cache_path, skipped))


async def _run(user_spec, assistant_spec, cfg, seeds, store, manifest, cache_path, skipped) -> None:
    from turnwise.simulate.engine import run_simulate
    from turnwise.simulate.stats import iter_output, summarize

    stats = None

    def add_stats(run: stage.StageRun) -> None:  # read back from the finished output, resumed dialogues included
        nonlocal stats
        stats = summarize(iter_output(store.path))
        run.fields["stats"] = stats.to_dict()

    async with stage.open_models([user_spec, assistant_spec], cache_path) as [user, assistant]:
        with (stage.stage_run(store, manifest, skipped=skipped, on_close=add_stats) as run,
              stage.record_progress("simulate", None) as on_record):
            result = await run_simulate(seeds, user, assistant, store, cfg, on_record=on_record)
            run.complete(result.cost())
    opt.stderr.print(f"{store.path}: {stats.summary()} ({store.written} new)", markup=False, highlight=False,
                     soft_wrap=True)
    for role, c in run.cost.items():
        opt.stderr.print(f"  {role}: calls {c['calls']}, cached {c['cached']}, failed {c['failed']}, "
                         f"tokens {c['prompt_tokens']}+{c['completion_tokens']}")


def ask_data(
    src: Annotated[Path, typer.Argument(metavar="IN", help="Real dialogues (any supported format).")],
    dst: Annotated[Path, typer.Argument(metavar="OUT", help="Ask-model training set (JSONL, roles flipped).")],
    to: Annotated[str, typer.Option(help="Output format: openai or trl-sft.")] = "openai",
    from_: Annotated[str | None, typer.Option("--from", help="Input format; detected when left out.")] = None,
    mode: Annotated[str, typer.Option(help="Simulator prompt: ask or prompted.")] = "ask",
    lang: Annotated[str, typer.Option(help="Prompt language: auto (per dialogue), en, zh.")] = "auto",
    end_marker: Annotated[str | None, typer.Option(help="End-of-conversation marker to learn, e.g. [END].")] = None,
    system: Annotated[str | None, typer.Option(help="Simulator system prompt (text or file); '' for none.")] = None,
    opener: Annotated[str | None, typer.Option(help="Simulator opener message (text or file).")] = None,
    min_user_turns: Annotated[int, typer.Option(help="Skip dialogues with fewer user turns.")] = 1,
    skip_invalid: Annotated[bool, typer.Option(help="Skip malformed records and report them.")] = False,
) -> None:
    """Flip real dialogues into ask-model training data: train it with the loss on assistant turns."""
    from turnwise.simulate.ask_data import AskDataConfig, write_ask_dataset

    cfg = AskDataConfig(mode=mode, lang=lang, end_marker=end_marker, system=system, opener=opener,
                        min_user_turns=min_user_turns)
    report = write_ask_dataset(src, dst, cfg, fmt=from_, to=to, skip_invalid=skip_invalid)
    opt.stderr.print(f"{src} ({report.fmt}) → {dst} ({to}, roles flipped): {report.summary()}", markup=False,
                     highlight=False, soft_wrap=True)
