"""`turnwise bestofn`: sample N answers per prompt, score them, write best-vs-worst preference pairs.

    turnwise bestofn prompts.jsonl pairs.jsonl --model runs/sft --backend local \
        --judge-model Qwen/Qwen2.5-72B-Instruct --judge-base-url http://127.0.0.1:8000/v1 --n 10
    turnwise train dpo --data pairs.jsonl --model runs/sft --output runs/dpo --beta 0.15 --sft-weight 0.1

OUT is TRL's conversational preference file (what `turnwise train dpo` reads); every prompt's record,
with all candidates, scores and judge evidence, is kept beside it in OUT.records.jsonl (resumable) and
the run's config, counts and cost in OUT.manifest.json.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from turnwise.cli import options as opt
from turnwise.cli import score as sc
from turnwise.cli import stage


def records_path(output: Path) -> Path:
    """``pairs.jsonl`` → ``pairs.records.jsonl``."""
    return output.with_name(output.stem + ".records.jsonl")


def bestofn(
    input: Annotated[Path, typer.Argument(metavar="IN", help="Prompts: conversations ending with a user turn.")],
    output: Annotated[Path, typer.Argument(metavar="OUT", help="Preference pairs (TRL conversational JSONL).")],
    model: opt.Model,
    backend: opt.Backend = "auto",
    base_url: opt.BaseUrl = None,
    api_key_env: opt.ApiKeyEnv = None,
    concurrency: opt.Concurrency = 16,
    chat_template: opt.ChatTemplate = None,
    dtype: opt.Dtype = "auto",
    n: Annotated[int, typer.Option("--n", help="Answers sampled per prompt.")] = 10,
    min_scored: Annotated[int, typer.Option(help="Skip prompts with fewer successfully scored answers.")] = 5,
    min_margin: Annotated[float, typer.Option(help="Smallest total-score gap (0–10), chosen vs rejected.")] = 1.0,
    temperature: Annotated[float, typer.Option(help="Policy sampling temperature.")] = 1.0,
    top_p: Annotated[float, typer.Option(help="Policy nucleus sampling mass.")] = 1.0,
    max_tokens: Annotated[int, typer.Option(help="Most new tokens per answer.")] = 1024,
    seed: Annotated[int | None, typer.Option(help="Sampling seed, where the backend honours one.")] = None,
    scorer: sc.Scorers = None,
    judge_model: sc.JudgeModel = None,
    judge_backend: sc.JudgeBackend = "auto",
    judge_base_url: sc.JudgeBaseUrl = None,
    judge_api_key_env: sc.JudgeKeyEnv = None,
    judge_concurrency: sc.JudgeConcurrency = 16,
    judge_attempts: sc.JudgeAttempts = 3,
    judge_max_tokens: sc.JudgeMaxTokens = 1024,
    dimensions: sc.Dimensions = "helpfulness,logicality,faithfulness,completeness",
    lang: sc.Lang = "auto",
    retriever: sc.RetrieverKind = "dense",
    embedding_model: sc.EmbeddingModel = "all-MiniLM-L6-v2",
    chunk_tokens: sc.ChunkTokens = 128,
    extract_chunk_tokens: sc.ExtractTokens = 4096,
    top_k: sc.TopK = 5,
    tokenizer: sc.Tokenizer = "regex",
    template_dir: sc.TemplateDir = None,
    details: sc.Details = True,
    timeout: opt.Timeout = 120.0,
    max_retries: opt.MaxRetries = 5,
    from_: Annotated[str | None, typer.Option("--from", help="Input format; detected when left out.")] = None,
    skip_invalid: Annotated[bool, typer.Option(help="Skip malformed input records and report them.")] = False,
    retry_failed: Annotated[bool, typer.Option(help="Try again the prompts that failed in an earlier run.")] = False,
    max_in_flight: Annotated[int, typer.Option(help="Prompts worked on at once.")] = 16,
    cache: opt.Cache = None,
    no_cache: opt.NoCache = False,
) -> None:
    """Best-of-N pairs: N sampled answers per prompt, scored (LongReward and/or checks), best vs worst."""
    from turnwise.bestofn.stage import BestOfNConfig
    from turnwise.data.formats import read_records
    from turnwise.models.base import GenerationSettings
    from turnwise.records import RecordStore

    options = sc.ScorerOptions(scorer, judge_model, judge_backend, judge_base_url, judge_api_key_env,
                               judge_concurrency, judge_attempts, judge_max_tokens, dimensions, lang, retriever,
                               embedding_model, chunk_tokens, extract_chunk_tokens, top_k, tokenizer, template_dir)
    options.check()
    policy_spec = opt.build_spec(model, backend, base_url, api_key_env, concurrency, timeout, max_retries,
                                 chat_template, dtype)
    judge_spec = options.judge_spec(timeout, max_retries)
    settings = GenerationSettings(temperature=temperature, top_p=top_p, max_tokens=max_tokens, n=n, seed=seed)
    cfg = BestOfNConfig(n=n, min_scored=min_scored, min_margin=min_margin, settings=settings,
                        max_in_flight=max_in_flight, details=details)
    items, skipped = read_records(input, from_, skip_invalid=skip_invalid)
    cache_path = stage.cache_path(cache, no_cache)
    store = RecordStore(records_path(output), retry_failed=retry_failed)
    config = {"input": str(input), "records": str(store.path), "policy": policy_spec.to_dict(),
              "judge": judge_spec.to_dict() if judge_spec else None, "settings": settings.to_dict(), "n": n,
              "min_scored": min_scored, "min_margin": min_margin, "cache": str(cache_path) if cache_path else None}
    stage.resuming(store, "prompts")
    run = _run(options, policy_spec, judge_spec, cfg, sc.conversations(items, "bestofn"), store, output, config,
               cache_path, skipped, opt.count_lines(input))
    asyncio.run(run)


async def _run(options, policy_spec, judge_spec, cfg, items, store, output, config, cache_path, skipped,
               total) -> None:
    from turnwise.bestofn.stage import run_bestofn, write_pairs
    from turnwise.records import RunManifest

    def pairs(run: stage.StageRun) -> None:  # every ok record so far, resumed ones included
        if run.manifest is not None:
            run.counts["pairs"] = write_pairs(store.path, output)

    async with stage.open_models([policy_spec, judge_spec], cache_path) as [policy, judge]:
        with stage.stage_run(store, skipped=skipped, on_close=pairs) as run:
            scorer, scorer_config = sc.build_scorer_from(options, judge)
            run.manifest = RunManifest(output, "bestofn", {**config, "scorer": scorer_config})
            with stage.record_progress("bestofn", total, store.resumed) as on_record:
                totals = await run_bestofn(items, policy, scorer, store, cfg, on_record=on_record)
            run.complete(totals.to_dict())
    sc.summary(store, run.cost.get("scoring", {}))
    opt.stderr.print(f"{output}: {run.counts.get('pairs', 0)} preference pairs")
