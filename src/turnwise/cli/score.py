"""`turnwise score`: score answers with LongReward's AI feedback and/or verifiable checks, resumably and cached.

    turnwise score answers.jsonl scored.jsonl --judge-model Qwen/Qwen2.5-72B-Instruct \
        --judge-base-url http://127.0.0.1:8000/v1
    turnwise score answers.jsonl scored.jsonl --scorer numeric                  # ground truth in meta.reference
    turnwise score answers.jsonl scored.jsonl --scorer longreward --scorer numeric=2 --judge-model ...

The judge, scorer and retriever options below are shared with `turnwise bestofn`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from turnwise.cli import options as opt
from turnwise.cli import stage

JudgeModel = Annotated[str | None, typer.Option("--judge-model", help="LLM judge: hub id, local path or served name.")]
JudgeBackend = Annotated[str, typer.Option("--judge-backend", help="openai, local, vllm, module:Class or auto.")]
JudgeBaseUrl = Annotated[list[str] | None, typer.Option("--judge-base-url", help="Judge endpoint (repeatable).")]
JudgeKeyEnv = Annotated[str | None, typer.Option("--judge-api-key-env", help="Variable holding the judge's API key.")]
JudgeConcurrency = Annotated[int, typer.Option("--judge-concurrency", help="Judge requests in flight per base URL.")]
JudgeAttempts = Annotated[int, typer.Option("--judge-attempts", help="Tries per verdict (first at temperature 0).")]
JudgeMaxTokens = Annotated[int, typer.Option("--judge-max-tokens", help="Most tokens per judge reply.")]
Scorers = Annotated[list[str] | None, typer.Option(
    "--scorer", help="NAME[=WEIGHT], repeatable: longreward, exact, normalized, numeric, module:function.")]
Dimensions = Annotated[str, typer.Option(help="LongReward dimensions, comma-separated.")]
Lang = Annotated[str, typer.Option(help="Judge prompt language: auto, en or zh.")]
RetrieverKind = Annotated[str, typer.Option("--retriever", help="Faithfulness evidence: dense (embeddings) or bm25.")]
EmbeddingModel = Annotated[str, typer.Option(help="sentence-transformers model (name, hub id or folder).")]
ChunkTokens = Annotated[int, typer.Option(help="Tokens per retrieval chunk (faithfulness).")]
ExtractTokens = Annotated[int, typer.Option(help="Tokens per key-point chunk (completeness).")]
TopK = Annotated[int, typer.Option(help="Chunks retrieved per factual statement.")]
Tokenizer = Annotated[str, typer.Option(help="Token counter for chunking: regex, or a tokenizer's hub id/folder.")]
TemplateDir = Annotated[Path | None, typer.Option(help="Folder of judge templates that replace the shipped ones.")]
Details = Annotated[bool, typer.Option("--details/--no-details", help="Keep the judges' analyses in the records.")]


@dataclass
class ScorerOptions:
    """The scoring options a command received, in one place."""

    scorer: list[str] | None
    judge_model: str | None
    judge_backend: str
    judge_base_url: list[str] | None
    judge_api_key_env: str | None
    judge_concurrency: int
    judge_attempts: int
    judge_max_tokens: int
    dimensions: str
    lang: str
    retriever: str
    embedding_model: str
    chunk_tokens: int
    extract_chunk_tokens: int
    top_k: int
    tokenizer: str
    template_dir: Path | None

    def check(self) -> None:
        """Refuse bad scorer settings before anything is opened or loaded."""
        from turnwise.errors import ConfigError
        from turnwise.retrieval.retriever import KINDS
        from turnwise.score.mix import check_specs

        check_specs(self.scorer or ["longreward"])
        self.longreward_config()
        if self.retriever not in KINDS:
            raise ConfigError(f"--retriever must be one of {', '.join(KINDS)}, got {self.retriever!r}")

    def longreward_config(self):  # -> LongRewardConfig
        from turnwise.score.longreward import LongRewardConfig

        return LongRewardConfig(dimensions=tuple(d.strip() for d in self.dimensions.split(",") if d.strip()),
                                lang=self.lang, top_k=self.top_k, extract_chunk_tokens=self.extract_chunk_tokens)

    def needs_judge(self) -> bool:
        return any(s.partition("=")[0].strip() == "longreward" for s in (self.scorer or ["longreward"]))

    def judge_spec(self, timeout: float, max_retries: int):  # -> ModelSpec | None
        if not self.needs_judge():
            return None
        if not self.judge_model:
            from turnwise.errors import ConfigError

            raise ConfigError("the longreward scorer needs --judge-model (or score with --scorer exact/numeric/...)")
        return opt.build_spec(self.judge_model, self.judge_backend, self.judge_base_url, self.judge_api_key_env,
                              self.judge_concurrency, timeout, max_retries, None, "auto")


def build_scorer_from(options: ScorerOptions, judge_model: Any | None) -> tuple[Any, dict[str, Any]]:
    """The scorer the options describe, around an already loaded (and cached) judge model; and its config."""
    from turnwise.judge.core import Judge, RetryPolicy
    from turnwise.retrieval.retriever import make_retriever
    from turnwise.score.mix import build_scorer

    judge = None
    if judge_model is not None:
        policy = RetryPolicy(attempts=options.judge_attempts, max_tokens=options.judge_max_tokens)
        search = (str(options.template_dir),) if options.template_dir else ()
        judge = Judge(judge_model, policy, search)
    config = options.longreward_config()
    retriever = make_retriever(options.retriever, embedding_model=options.embedding_model,
                               chunk_tokens=options.chunk_tokens, tokenizer=options.tokenizer)
    scorer = build_scorer(options.scorer or ["longreward"], judge=judge, retriever=retriever, longreward=config)
    return scorer, scorer.describe()


def score(
    input: Annotated[Path, typer.Argument(metavar="IN", help="Conversations ending with the answer to score.")],
    output: Annotated[Path, typer.Argument(metavar="OUT", help="Output records (JSONL); re-running resumes it.")],
    scorer: Scorers = None,
    judge_model: JudgeModel = None,
    judge_backend: JudgeBackend = "auto",
    judge_base_url: JudgeBaseUrl = None,
    judge_api_key_env: JudgeKeyEnv = None,
    judge_concurrency: JudgeConcurrency = 16,
    judge_attempts: JudgeAttempts = 3,
    judge_max_tokens: JudgeMaxTokens = 1024,
    dimensions: Dimensions = "helpfulness,logicality,faithfulness,completeness",
    lang: Lang = "auto",
    retriever: RetrieverKind = "dense",
    embedding_model: EmbeddingModel = "all-MiniLM-L6-v2",
    chunk_tokens: ChunkTokens = 128,
    extract_chunk_tokens: ExtractTokens = 4096,
    top_k: TopK = 5,
    tokenizer: Tokenizer = "regex",
    template_dir: TemplateDir = None,
    details: Details = True,
    timeout: opt.Timeout = 120.0,
    max_retries: opt.MaxRetries = 5,
    from_: Annotated[str | None, typer.Option("--from", help="Input format; detected when left out.")] = None,
    skip_invalid: Annotated[bool, typer.Option(help="Skip malformed input records and report them.")] = False,
    retry_failed: Annotated[bool, typer.Option(help="Score again the records that failed in an earlier run.")] = False,
    max_in_flight: Annotated[int, typer.Option(help="Conversations scored at once.")] = 16,
    cache: opt.Cache = None,
    no_cache: opt.NoCache = False,
) -> None:
    """Score each conversation's last answer (or all its samples): LongReward's 4 dimensions and/or checks."""
    from turnwise.data.formats import read_records
    from turnwise.records import RecordStore

    options = ScorerOptions(scorer, judge_model, judge_backend, judge_base_url, judge_api_key_env, judge_concurrency,
                            judge_attempts, judge_max_tokens, dimensions, lang, retriever, embedding_model,
                            chunk_tokens, extract_chunk_tokens, top_k, tokenizer, template_dir)
    options.check()
    spec = options.judge_spec(timeout, max_retries)
    items, skipped = read_records(input, from_, skip_invalid=skip_invalid)
    cache_path = stage.cache_path(cache, no_cache or spec is None)
    store = RecordStore(output, retry_failed=retry_failed)
    config = {"input": str(input), "judge": spec.to_dict() if spec else None,
              "cache": str(cache_path) if cache_path else None, "max_in_flight": max_in_flight}
    stage.resuming(store)
    run = _run(options, spec, conversations(items, "score"), store, output, config, cache_path,
               max_in_flight, details, skipped, opt.count_lines(input))
    asyncio.run(run)  # the manifest is written inside, once the scorer (and its config) exists


def conversations(items: Any, command: str) -> Any:
    """Conversations only: a preference pair in the input is a user error, named with its id."""
    from turnwise.data.schema import PreferencePair
    from turnwise.errors import ConfigError

    for item in items:
        if isinstance(item, PreferencePair):
            raise ConfigError(f"{command} reads conversations, not preference pairs (record {item.id!r})")
        yield item


async def _run(options, spec, items, store, output, config, cache_path, max_in_flight, details, skipped,
               total) -> None:
    from turnwise.records import RunManifest
    from turnwise.score.stage import run_score

    async with stage.open_models([spec], cache_path) as [judge_model]:
        with stage.stage_run(store, skipped=skipped) as run:
            scorer, scorer_config = build_scorer_from(options, judge_model)
            run.manifest = RunManifest(output, "score", {**config, "scorer": scorer_config})
            with stage.record_progress("score", total, store.resumed) as on_record:
                totals = await run_score(items, scorer, store, max_in_flight=max_in_flight, details=details,
                                         on_record=on_record)
            run.complete(totals.to_dict())
    summary(store, run.cost)


def summary(store: Any, cost: dict[str, Any]) -> None:
    """One line of counts and cost per scored response, then the most common failure reasons."""
    per = cost.get("per_response", {})
    stage.print_summary(store, f"; {cost.get('responses', 0)} responses scored, per response: "
                               f"judge calls {per.get('judge_calls', 0)}, embeddings {per.get('embedded', 0)}")
