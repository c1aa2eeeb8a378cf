"""`turnwise rag`: multi-turn retrieval-augmented chat: build an index, then chat or answer a file.

    turnwise rag index corpus.jsonl runs/index                          # chunk, embed (MiniLM, offline), BM25
    turnwise rag index canard_dev.json runs/index --from canard         # CANARD's answer spans as the corpus
    turnwise rag chat --index runs/index --model M --base-url URL       # interactive; one log line per turn
    turnwise rag batch conversations.jsonl answers.jsonl --index runs/index --model M

Each turn: the follow-up is rewritten into a self-contained query (by ``--rewriter-model``, default the
answering model; gated by the context-dependence detector), the index is searched with it, and the
answering model sees the original messages, the retrieved chunks and the history trimmed to ``--budget``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import typer

from turnwise.cli import options as opt
from turnwise.cli import rewrite as rw
from turnwise.cli import stage

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Multi-turn RAG: rewrite follow-ups for retrieval, retrieve, answer with the history.")

IndexDir = Annotated[Path, typer.Option("--index", help="A folder written by `turnwise rag index`.")]
RewriterModel = Annotated[str | None, typer.Option(
    help="Model that rewrites follow-ups (same backend options); default: the answering model.")]
NoRewrite = Annotated[bool, typer.Option("--no-rewrite", help="Search with each question as asked.")]
TopK = Annotated[int, typer.Option(help="Chunks retrieved per turn.")]
Budget = Annotated[int, typer.Option(help="Most tokens of the answering prompt; the oldest history goes first.")]
TokenizerOpt = Annotated[str, typer.Option(
    "--tokenizer", help="Counts the budget: auto (the model's own for local/vllm, else an estimate), none "
                        "(estimate: words and CJK characters + 4 per message), or a tokenizer id/folder.")]
MaxTokens = Annotated[int, typer.Option(help="Most new tokens per answer.")]
Temperature = Annotated[float, typer.Option(help="Answer temperature (0 = greedy).")]


@app.command("index")
def index(
    corpus: Annotated[Path, typer.Argument(help="JSONL documents {id, text, title?}, a folder of .txt/.md, or CANARD")],
    output: Annotated[Path, typer.Argument(metavar="OUT", help="Index folder to write.")],
    from_: Annotated[str, typer.Option("--from", help="auto, jsonl, dir or canard.")] = "auto",
    kind: Annotated[str, typer.Option(help="dense, bm25 or hybrid (reciprocal rank fusion).")] = "hybrid",
    chunk_tokens: Annotated[int, typer.Option(help="Tokens per chunk.")] = 128,
    overlap: Annotated[int, typer.Option(help="Tokens shared by neighbouring chunks.")] = 0,
    tokenizer: Annotated[str, typer.Option(help="Chunking tokens: regex, or a tokenizer id/folder.")] = "regex",
    embedding_model: Annotated[str, typer.Option(help="sentence-transformers model (name, id, folder).")] =
        "all-MiniLM-L6-v2",
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    """Chunk a corpus by tokens, embed it and index it for BM25; saved so that later runs embed nothing again."""
    from turnwise.rag.corpus import read_corpus
    from turnwise.rag.index import IndexSettings, RagIndex

    settings = IndexSettings(kind=kind, chunk_tokens=chunk_tokens, overlap=overlap, tokenizer=tokenizer,
                             embedding_model=embedding_model)
    if output.exists() and not overwrite:
        raise typer.BadParameter(f"{output} exists; pass --overwrite to replace it")
    documents = read_corpus(corpus, from_)
    start = time.time()
    with opt.progress_bar("embed", None) as progress:
        built = RagIndex.build(documents, settings,
                               on_progress=lambda done, total: progress.update(0, completed=done, total=total))
    built.save(output, overwrite=overwrite)
    opt.stderr.print(f"{output}: {len(built)} chunks of {len(documents)} documents ({kind}, {chunk_tokens} tokens "
                     f"per chunk) in {time.time() - start:.1f} s")


def _token_counter(choice: str, spec: Any) -> Any:
    from turnwise.data.render import load_tokenizer
    from turnwise.rag.engine import token_counter

    if choice == "none":
        return token_counter(None)
    if choice == "auto":
        if spec.resolved_backend() not in ("local", "vllm"):
            return token_counter(None)
        choice = spec.model
    return token_counter(load_tokenizer(choice, chat_template=spec.chat_template))


@contextlib.asynccontextmanager
async def _open_engine(index_dir: Path, spec: Any, rewriter_model: str | None, no_rewrite: bool, rewrite_config: Any,
                       rag_config: Any, tokenizer: str, cache_path: Path | None) -> AsyncIterator[Any]:
    """The engine, its models behind the response cache; everything is closed on the way out."""
    from dataclasses import replace

    from turnwise.rag.engine import RagEngine
    from turnwise.rag.index import RagIndex
    from turnwise.rag.rewriter import Rewriter

    found = RagIndex.load(index_dir)
    rewriter_spec = replace(spec, model=rewriter_model) if rewriter_model and not no_rewrite else None
    async with stage.open_models([spec, rewriter_spec], cache_path) as [model, rewriter_chat]:
        rewriter = None if no_rewrite else Rewriter(rewriter_chat or model, rewrite_config)
        yield RagEngine(found, model, rewriter=rewriter, count_tokens=_token_counter(tokenizer, spec),
                        config=rag_config)


def _configs(variant, gate, lang, few_shot, rewrite_max_tokens, template_dir, top_k, budget, max_tokens,
             temperature) -> tuple[Any, Any]:
    from turnwise.models.base import GenerationSettings
    from turnwise.rag.engine import RagConfig

    rewrite_config = rw.rewrite_config(variant, gate, lang, few_shot, rewrite_max_tokens, 1, template_dir)
    settings = GenerationSettings(temperature=temperature, max_tokens=max_tokens)
    search = (str(template_dir),) if template_dir else ()
    return rewrite_config, RagConfig(top_k=top_k, budget=budget, settings=settings, search_path=search)


@app.command("batch")
def batch(
    input: Annotated[Path, typer.Argument(metavar="IN", help="Conversations (any format), or rewrite data (--from).")],
    output: Annotated[Path, typer.Argument(metavar="OUT", help="One record per conversation (JSONL); resumable.")],
    index_dir: IndexDir,
    model: opt.Model,
    rewriter_model: RewriterModel = None,
    no_rewrite: NoRewrite = False,
    variant: rw.Variant = "cot",
    gate: rw.Gate = "rules",
    lang: rw.Lang = "auto",
    few_shot: rw.FewShot = True,
    rewrite_max_tokens: rw.RewriteTokens = 384,
    template_dir: rw.TemplateDir = None,
    top_k: TopK = 4,
    budget: Budget = 4096,
    tokenizer: TokenizerOpt = "auto",
    max_tokens: MaxTokens = 512,
    temperature: Temperature = 0.0,
    from_: rw.From = None,
    limit: rw.Limit = None,
    backend: opt.Backend = "auto",
    base_url: opt.BaseUrl = None,
    api_key_env: opt.ApiKeyEnv = None,
    concurrency: opt.Concurrency = 16,
    timeout: opt.Timeout = 120.0,
    max_retries: opt.MaxRetries = 5,
    chat_template: opt.ChatTemplate = None,
    dtype: opt.Dtype = "auto",
    skip_invalid: Annotated[bool, typer.Option(help="Skip malformed conversations and report them.")] = False,
    retry_failed: Annotated[bool, typer.Option(help="Answer again the conversations that failed before.")] = False,
    max_in_flight: Annotated[int, typer.Option(help="Conversations in work at once.")] = 16,
    cache: opt.Cache = None,
    no_cache: opt.NoCache = False,
) -> None:
    """Answer each conversation's last user turn (then its follow-ups) with rewrite, retrieval and history."""
    from turnwise.rag.datasets import read_conversations
    from turnwise.records import RecordStore

    rewrite_config, rag_config = _configs(variant, gate, lang, few_shot, rewrite_max_tokens, template_dir, top_k,
                                          budget, max_tokens, temperature)
    spec = opt.build_spec(model, backend, base_url, api_key_env, concurrency, timeout, max_retries, chat_template,
                          dtype)
    conversations, skipped = read_conversations(input, from_, skip_invalid=skip_invalid, limit=limit)
    cache_path = stage.cache_path(cache, no_cache)
    store = RecordStore(output, retry_failed=retry_failed)
    stage.resuming(store)
    parts = (index_dir, spec, rewriter_model, no_rewrite, rewrite_config, rag_config, tokenizer, cache_path)
    settings = {"input": str(input), "format": from_, "limit": limit, "index": str(index_dir),
                "model": spec.to_dict(), "cache": str(cache_path) if cache_path else None, "tokenizer": tokenizer}
    asyncio.run(_batch(parts, conversations, store, settings, max_in_flight, skipped))


async def _batch(parts, conversations, store, settings, max_in_flight, skipped) -> None:
    from turnwise.rag.batch import run_rag_batch
    from turnwise.records import RunManifest

    with stage.stage_run(store, skipped=skipped) as run:
        run.fields["rewrites"] = {}
        async with _open_engine(*parts) as engine:
            run.manifest = RunManifest(store.path, "rag-batch", {**settings, "engine": engine.describe()})
            with stage.record_progress("rag", None) as on_record:
                result = await run_rag_batch(conversations, engine, store, max_in_flight=max_in_flight,
                                             on_record=on_record)
        run.fields["rewrites"] = dict(result.rewrites)
        run.complete(result.cost.to_dict())
    cost = run.cost
    stage.print_summary(store, f"; {result.turns} turns; rewrites: {rw._statuses(run.fields['rewrites'])}; "
                               f"calls {cost.get('calls', 0)}, cached {cost.get('cached', 0)}")


@app.command("chat")
def chat(
    index_dir: IndexDir,
    model: opt.Model,
    system: Annotated[str | None, typer.Option(help="System message, kept through every turn.")] = None,
    topic: Annotated[str | None, typer.Option(help="What the conversation is about (shown to the rewriter).")] = None,
    log: Annotated[Path | None, typer.Option(help="Per-turn JSONL log (default rag-chat-<time>.jsonl).")] = None,
    rewriter_model: RewriterModel = None,
    no_rewrite: NoRewrite = False,
    variant: rw.Variant = "cot",
    gate: rw.Gate = "rules",
    lang: rw.Lang = "auto",
    few_shot: rw.FewShot = True,
    rewrite_max_tokens: rw.RewriteTokens = 384,
    template_dir: rw.TemplateDir = None,
    top_k: TopK = 4,
    budget: Budget = 4096,
    tokenizer: TokenizerOpt = "auto",
    max_tokens: MaxTokens = 512,
    temperature: Temperature = 0.0,
    backend: opt.Backend = "auto",
    base_url: opt.BaseUrl = None,
    api_key_env: opt.ApiKeyEnv = None,
    concurrency: opt.Concurrency = 4,
    timeout: opt.Timeout = 120.0,
    max_retries: opt.MaxRetries = 5,
    chat_template: opt.ChatTemplate = None,
    dtype: opt.Dtype = "auto",
    cache: opt.Cache = None,
    no_cache: opt.NoCache = False,
) -> None:
    """Chat over the index, reading turns from stdin: /reset forgets the conversation, /exit (or EOF) ends it."""
    rewrite_config, rag_config = _configs(variant, gate, lang, few_shot, rewrite_max_tokens, template_dir, top_k,
                                          budget, max_tokens, temperature)
    spec = opt.build_spec(model, backend, base_url, api_key_env, concurrency, timeout, max_retries, chat_template,
                          dtype)
    log = log or Path(f"rag-chat-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
    parts = (index_dir, spec, rewriter_model, no_rewrite, rewrite_config, rag_config, tokenizer,
             stage.cache_path(cache, no_cache))
    asyncio.run(_chat(parts, system, topic, log))
    opt.stderr.print(f"log: {log}")


async def _chat(parts, system: str | None, topic: str | None, log: Path) -> None:
    from turnwise.rag.engine import ChatSession
    from turnwise.records import RunManifest
    from turnwise.stages.runner import Cost

    log.parent.mkdir(parents=True, exist_ok=True)
    session_id = time.strftime("%Y%m%dT%H%M%S")
    async with _open_engine(*parts) as engine:
        manifest = RunManifest(log, "rag-chat", {"engine": engine.describe(), "system": system, "topic": topic})
        turns, cost = 0, Cost()
        with open(log, "a", encoding="utf-8") as handle:

            def write(turn: Any) -> None:
                cost.__iadd__(turn.cost)
                handle.write(json.dumps({"session": session_id, **turn.to_log()}, ensure_ascii=False) + "\n")
                handle.flush()

            session = ChatSession(engine, system=system, topic=topic, on_turn=write)
            while (text := await _read_turn()) is not None:
                if text == "/reset":
                    session.reset()
                    continue
                turn = await session.ask(text)
                turns += 1
                typer.echo(turn.answer if turn.answer is not None else f"[error] {turn.error}")
                opt.stderr.print(f"[dim]searched: {turn.query} | chunks: {', '.join(turn.chunk_ids) or '-'}[/dim]")
        manifest.finish("complete", {"turns": turns}, cost.to_dict())


async def _read_turn() -> str | None:
    """The next non-empty line of stdin; None at EOF or /exit."""
    while True:
        if sys.stdin.isatty():
            typer.echo("you> ", nl=False)
        line = await asyncio.to_thread(sys.stdin.readline)
        if not line:
            return None
        text = line.strip()
        if text in ("/exit", "/quit"):
            return None
        if text:
            return text
