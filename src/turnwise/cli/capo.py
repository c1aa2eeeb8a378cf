"""`turnwise capo`: context-aware preference pairs (Parrot's CaPO) for the dependent turns of dialogues.

    turnwise capo dialogues.jsonl pairs.jsonl --model ./tiny                       # any model, tiny ones too
    turnwise capo dialogues.jsonl pairs.jsonl --model M --base-url URL --prompted   # an instruction model
    turnwise capo dialogues.jsonl pairs.jsonl --model M --detections detections.jsonl --mix neglect=2,hallucination=1

Writes ``OUT`` (the unique ok pairs in TRL's conversational preference layout, what ``turnwise train dpo``
reads), ``OUT.records.jsonl`` (every pair with its status, reason and raw text; re-running resumes it)
and ``OUT.manifest.json``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer

from turnwise.capo.export import export_pairs
from turnwise.capo.stage import CapoConfig, run_capo
from turnwise.capo.strategies import STRATEGIES, CapoModels
from turnwise.capo.tasks import parse_mix
from turnwise.cli import options as opt
from turnwise.cli import stage
from turnwise.data.formats import read_records
from turnwise.data.schema import Conversation
from turnwise.detect.rules import TurnDecision
from turnwise.errors import ConfigError
from turnwise.models.base import GenerationSettings, ModelSpec
from turnwise.records import RecordStore, RunManifest, read_stage_output


def capo(
    input: Annotated[Path, typer.Argument(metavar="IN", help="Dialogues (any supported conversation format).")],
    output: Annotated[Path, typer.Argument(metavar="OUT", help="Preference pairs (trl-pref JSONL) for the trainer.")],
    model: Annotated[str, typer.Option("--model", "-m", help="The negative writer (hub id, local path, served name).")],
    chosen_model: Annotated[
        str | None, typer.Option(help="Writes the chosen answers with the full history; default: the dialogue's own.")
    ] = None,
    simulator_model: Annotated[
        str | None, typer.Option(help="User simulator for invented openings (hallucination); default: --model.")
    ] = None,
    detections: Annotated[
        Path | None, typer.Option(help="A `turnwise detect` output to take the dependent turns from; default: cues.")
    ] = None,
    mix: Annotated[str, typer.Option(help="Strategy ratios, e.g. neglect=2,hallucination=1,misunderstanding=1.")] = (
        "neglect=1,hallucination=1,misunderstanding=1"),
    neglect: Annotated[str, typer.Option(help="plain (turn alone) or prompted.")] = "plain",
    hallucination: Annotated[str, typer.Option(help="simulator (sampled opening) or prompted.")] = "simulator",
    misunderstanding: Annotated[str, typer.Option(help="shuffle, other (another dialogue) or prompted.")] = "shuffle",
    prompted: Annotated[bool, typer.Option(help="All three strategies prompted (instruction models).")] = False,
    simulator_prompt: Annotated[str, typer.Option(help="Simulator prompt: ask (trained) or prompted.")] = "ask",
    max_similarity: Annotated[float, typer.Option(help="Drop a pair whose rejected answer is this similar.")] = 0.9,
    min_confidence: Annotated[float, typer.Option(help="Only turns detected dependent this confidently.")] = 0.0,
    lang: Annotated[str, typer.Option(help="Prompt and cue language: auto, en or zh.")] = "auto",
    backend: opt.Backend = "auto",
    base_url: opt.BaseUrl = None,
    api_key_env: opt.ApiKeyEnv = None,
    concurrency: opt.Concurrency = 16,
    timeout: opt.Timeout = 120.0,
    max_retries: opt.MaxRetries = 5,
    chat_template: opt.ChatTemplate = None,
    dtype: opt.Dtype = "auto",
    temperature: Annotated[float, typer.Option(help="Sampling temperature of every role; 0 = greedy.")] = 0.7,
    max_tokens: Annotated[int, typer.Option(help="Most new tokens per answer.")] = 512,
    seed: Annotated[int, typer.Option(help="Run seed: mix selection, shuffles, borrowed dialogues.")] = 0,
    records: Annotated[Path | None, typer.Option(help="The records file; default: OUT.records.jsonl.")] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Input format; detected when left out.")] = None,
    skip_invalid: Annotated[bool, typer.Option(help="Skip malformed input records and report them.")] = False,
    retry_failed: Annotated[bool, typer.Option(help="Try again the pairs that failed in an earlier run.")] = False,
    max_in_flight: Annotated[int, typer.Option(help="Dependent turns in work at once.")] = 64,
    cache: opt.Cache = None,
    no_cache: opt.NoCache = False,
) -> None:
    """Build context-aware preference pairs: neglect, hallucination and misunderstanding negatives."""
    modes = dict.fromkeys(STRATEGIES, "prompted") if prompted else {
        "neglect": neglect, "hallucination": hallucination, "misunderstanding": misunderstanding}
    if lang not in ("auto", "en", "zh"):
        raise ConfigError(f"--lang must be auto, en or zh, got {lang!r}")
    settings = GenerationSettings(temperature=temperature, max_tokens=max_tokens)
    config = CapoConfig(parse_mix(mix, STRATEGIES), modes, settings, settings,
                        GenerationSettings(temperature=max(temperature, 0.7), max_tokens=min(max_tokens, 128)),
                        simulator_prompt, max_similarity, min_confidence, lang=None if lang == "auto" else lang,
                        seed=seed)

    def spec(name: str) -> ModelSpec:
        return opt.build_spec(name, backend, base_url, api_key_env, concurrency, timeout, max_retries,
                              chat_template, dtype)

    specs = {"negative": spec(model), "chosen": spec(chosen_model) if chosen_model else None,
             "simulator": spec(simulator_model) if simulator_model else None}
    conversations, skipped_status = _read_dialogues(input, from_, skip_invalid)
    decisions = _read_detections(detections) if detections else None
    records_path = records or output.with_name(output.stem + ".records.jsonl")
    cache_path = stage.cache_path(cache, no_cache)
    manifest = RunManifest(output, "capo", {
        "input": str(input), "records": str(records_path), "detections": str(detections) if detections else None,
        **config.to_dict(), "models": {k: s.to_dict() for k, s in specs.items() if s},
        "cache": str(cache_path) if cache_path else None})
    store = RecordStore(records_path, retry_failed=retry_failed)
    stage.resuming(store)
    asyncio.run(_run(specs, config, conversations, decisions, store, manifest, cache_path, max_in_flight,
                     skipped_status, output))


def _read_dialogues(path: Path, fmt: str | None, skip_invalid: bool) -> tuple[list[Conversation], dict[str, Any]]:
    """The dialogues of a file; an earlier stage's ``filtered``/``failed`` records are left out and counted."""
    items, report = read_records(path, fmt, skip_invalid=skip_invalid)
    kept, not_ok = [], 0
    for item in items:
        if not isinstance(item, Conversation):
            raise ConfigError(f"capo reads dialogues, not preference pairs (record {item.id!r})")
        if item.meta.get("status", "ok") != "ok":
            not_ok += 1
            continue
        kept.append(item)
    return kept, {"input_not_ok": not_ok, "skipped_invalid": report.to_dict()}


def _read_detections(path: Path) -> dict[str, list[TurnDecision]]:
    """Decisions by dialogue id from a detect run's ``ok`` records."""
    return {r["id"]: [TurnDecision.from_dict(t) for t in r["turns"]]
            for r in read_stage_output(path) if r["status"] == "ok"}


async def _run(specs, config, conversations, decisions, store, manifest, cache_path, max_in_flight, skipped,
               output) -> None:
    exported = None

    def export(run: stage.StageRun) -> None:  # the pairs file is written from a complete run only
        nonlocal exported
        if run.status == "complete":
            exported = export_pairs(store.path, output)
        run.counts["input_not_ok"] = skipped["input_not_ok"]
        run.fields.update(pairs=exported.to_dict() if exported else None, skipped_invalid=skipped["skipped_invalid"])

    async with stage.open_models(list(specs.values()), cache_path) as roles:
        with (stage.stage_run(store, manifest, on_close=export) as run,
              stage.record_progress("capo", None) as on_record):
            result = await run_capo(conversations, store, config, CapoModels(*roles), detections=decisions,
                                    max_in_flight=max_in_flight, on_record=on_record)
            run.complete(result.cost.to_dict())
    _summary(store, exported, output)


def _summary(store: RecordStore, exported: Any, output: Path) -> None:
    stage.print_summary(store)
    if exported is not None:
        per = ", ".join(f"{k} {v}" for k, v in sorted(exported.by_strategy.items()))
        opt.stderr.print(f"{output}: {exported.written} pairs ({per}); {exported.duplicates} duplicates dropped")
