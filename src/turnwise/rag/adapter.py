"""The ``rewrite`` stage: rewrite every user turn into a self-contained query (gated by the detector).

    turnwise rewrite dialogues.jsonl rewrites.jsonl --model M --base-url URL
    turnwise rewrite canard_dev.json rewrites.jsonl --from canard --model M

    - name: rewrite                   # in a recipe
      kind: rewrite
      inputs: {conversations: simulate}
      models: {model: rewriter}
      settings: {variant: direct}

Writes ``OUT`` (one record per user turn: the query to search, the rewrite, how it was reached; see
:mod:`turnwise.rag.stage`) and ``OUT.manifest.json``. :class:`RewriteSettings` also drive ``turnwise rewrite eval``
and the rewriting inside ``turnwise rag``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from turnwise.models.base import GenerationSettings
from turnwise.rag.index import IndexSettings
from turnwise.stage.context import StageContext, StageResult
from turnwise.stage.inputs import replies_line, short, tally
from turnwise.stage.spec import Output, Port, Stage

STATUSES = ("rewritten", "unchanged", "skipped", "failed")


@dataclass
class RewriteSettings:
    """How follow-ups are rewritten into self-contained queries.

    Attributes:
        variant: the prompt: ``cot`` (reason, then rewrite) or ``direct`` (the rewrite alone).
        gate: ``rules`` (no call for turns the detector finds standalone) or ``always`` (a call for every turn that
            has context). First turns are never sent.
        lang: prompt language: ``auto`` (the question's), ``en`` or ``zh``.
        few_shot: show the worked examples in the prompt.
        max_tokens: most tokens of one rewriter reply (the chain of thought needs room).
        attempts: tries per turn (the first greedy, later ones sampled).
        history_messages: most recent messages shown to the rewriter.
        max_added_tokens: a rewrite longer than the question by more than this is rejected as an answer.
        template_dir: a folder of prompt templates searched before the shipped ones (``rag/rewrite_cot.en.jinja``,
            ``rag/examples/rewrite.en.jinja``...).
        limit: only the first N conversations, or turns of a rewrite data set (0 = all).
        input_format: the input's format: ``canard``, ``cast``, ``mudoco``, ``zh-rewrite`` (rewrite data sets), or a
            conversation format (detected when null).
        skip_invalid: skip malformed input records and count them in the manifest, instead of stopping.
        max_in_flight: turns in work at once.
        structured: hold the rewriter's replies to ``{"reasoning", "rewrite"}`` by constrained decoding (a grammar
            on the local backend, ``response_format`` on an OpenAI-compatible server) and read them as JSON.
    """

    variant: str = "cot"
    gate: str = "rules"
    lang: str = "auto"
    few_shot: bool = True
    max_tokens: int = field(default=384, metadata={"cli": "--rewrite-max-tokens"})
    attempts: int = 1
    history_messages: int = 12
    max_added_tokens: int = 64
    template_dir: str | None = None
    limit: int = 0
    input_format: str | None = field(default=None, metadata={"cli": "--from"})
    skip_invalid: bool = False
    max_in_flight: int = 64
    structured: bool = False

    def __post_init__(self) -> None:
        self.config()  # refuse an unknown variant, gate or language before anything runs

    def config(self) -> Any:
        """The rewriter's own config (:class:`turnwise.rag.rewriter.RewriteConfig`)."""
        from turnwise.prompts import search_path
        from turnwise.rag.rewriter import RewriteConfig

        return RewriteConfig(variant=self.variant, gate=self.gate, lang=self.lang, few_shot=self.few_shot,
                             max_tokens=self.max_tokens, attempts=self.attempts,
                             history_messages=self.history_messages, max_added_tokens=self.max_added_tokens,
                             search_path=search_path(self.template_dir), structured=self.structured)


def replies(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The rewriter's replies that could be read (a turn the gate kept from the rewriter is no call)."""
    return {"rewrite": tally([(r["rewrite_status"] != "failed", (r.get("reason") or "").split(": ", 1)[-1])
                              for r in records if r["rewrite_status"] != "skipped"])}


def statuses_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {counts.get(k, 0)}" for k in STATUSES)


def rewrite_turns(ctx: StageContext, turns: Any, output: str = "rewrites") -> dict[str, int]:
    """Rewrite ``turns`` with the model of the ``model`` role into ``output``; the rewrite statuses of this run."""
    from turnwise.rag.rewriter import Rewriter
    from turnwise.rag.stage import run_rewrite

    s = ctx.settings

    async def go() -> dict[str, int]:
        async with ctx.open_models("model") as (model,):
            rewriter = Rewriter(model, s.config())
            with ctx.records(output, {"rewriter": rewriter.describe()}) as run:
                run.fields["rewrites"] = {}
                result = await run_rewrite(turns, rewriter, run.store, max_in_flight=s.max_in_flight,
                                           on_record=lambda _: ctx.advance())
                run.fields["rewrites"] = dict(result.statuses)
                run.cost = result.cost.to_dict()
        return dict(result.statuses)

    return asyncio.run(go())


def rewrite(ctx: StageContext) -> StageResult:
    from turnwise.rag.datasets import read_turns
    from turnwise.records import read_stage_output

    s = ctx.settings
    turns, report = read_turns(ctx.input("conversations"), s.input_format, skip_invalid=s.skip_invalid,
                               limit=s.limit or None)
    ctx.skipped["conversations"] = report  # it fills in as the turns are read, before the manifest is finished
    rewrite_turns(ctx, turns)
    if report.total:
        ctx.say(f"{ctx.input('conversations')}: {report.summary()}")
    records = read_stage_output(ctx.output("rewrites"))
    counts: dict[str, int] = {}
    for record in records:
        counts[record["rewrite_status"]] = counts.get(record["rewrite_status"], 0) + 1
    read = replies(records)
    text = next((f"{r['question']} → {r['rewrite']}" for r in records if r["rewrite_status"] == "rewritten"), None)
    return StageResult(ctx.outputs(), f"rewrites: {statuses_line(counts)}; {replies_line(read)}", counts=counts,
                       numbers={"replies": read, **({"example": short(text)} if text else {})})


REWRITE = Stage("rewrite", "Rewrite every user turn into a self-contained query (temperature 0; gated by the "
                "detector).", RewriteSettings, rewrite,
                inputs=(Port("conversations", "conversations (any format turnwise reads) or a rewrite data set "
                                              "(see --from)"),),
                models=(Port("model", "the rewriter"),),
                outputs=(Output("rewrites", "rewrites.jsonl", "one record per user turn"),), primary="model")


@dataclass
class RagSettings(RewriteSettings):
    """Settings of ``rag``: how follow-ups are rewritten (:class:`RewriteSettings`), searched and answered.

    Attributes:
        rewrite: rewrite follow-ups before searching (false: search with each question as asked).
        top_k: chunks retrieved per turn.
        budget: most tokens of the answering prompt; the oldest history goes first.
        tokenizer: counts the budget: ``auto`` (the model's own for local and vllm, else an estimate), ``none``
            (estimate: words and CJK characters, 4 per message), or a tokenizer's hub id or folder.
        answer: the answering model's generation settings.
        answer_lang: language of the answer prompt's instructions: ``auto`` (the question's), ``en`` or ``zh``.
    """

    rewrite: bool = True
    top_k: int = 4
    budget: int = 4096
    tokenizer: str = "auto"
    answer: GenerationSettings = field(default_factory=lambda: GenerationSettings(temperature=0.0, max_tokens=512),
                                       metadata={"cli": "", "cli_rename": {"seed": "--answer-seed"}})
    answer_lang: str = "auto"
    max_in_flight: int = 16

    def rag_config(self) -> Any:
        from turnwise.prompts import search_path
        from turnwise.rag.engine import RagConfig

        return RagConfig(top_k=self.top_k, budget=self.budget, settings=self.answer, lang=self.answer_lang,
                         search_path=search_path(self.template_dir))


@contextlib.asynccontextmanager
async def open_engine(ctx: StageContext, index: Path) -> AsyncIterator[Any]:
    """The RAG engine over ``index``: the ``model`` role answers, the ``rewriter`` role (default: the same model)
    rewrites; both behind the response cache."""
    from turnwise.rag.engine import RagEngine
    from turnwise.rag.index import RagIndex
    from turnwise.rag.rewriter import Rewriter

    s = ctx.settings
    found = RagIndex.load(index)
    async with ctx.open_models("model", "rewriter") as (model, rewriter_model):
        rewriter = Rewriter(rewriter_model or model, s.config()) if s.rewrite else None
        yield RagEngine(found, model, rewriter=rewriter, count_tokens=_token_counter(s.tokenizer, ctx.models["model"]),
                        config=s.rag_config())


def _token_counter(choice: str, model: Any) -> Any:
    from turnwise.data.render import load_tokenizer
    from turnwise.rag.engine import token_counter

    if choice == "none":
        return token_counter(None)
    if choice == "auto":
        if model.spec.resolved_backend() not in ("local", "vllm"):
            return token_counter(None)
        choice = model.spec.model
    return token_counter(load_tokenizer(choice, chat_template=model.spec.chat_template))


def rag(ctx: StageContext) -> StageResult:
    from turnwise.rag.batch import run_rag_batch
    from turnwise.rag.datasets import read_conversations

    s = ctx.settings
    conversations, report = read_conversations(ctx.input("conversations"), s.input_format,
                                               skip_invalid=s.skip_invalid, limit=s.limit or None)
    ctx.skipped["conversations"] = report

    async def go() -> Any:
        async with open_engine(ctx, ctx.input("index")) as engine:
            with ctx.records("answers", {"engine": engine.describe()}) as run:
                run.fields["rewrites"] = {}
                result = await run_rag_batch(conversations, engine, run.store, max_in_flight=s.max_in_flight,
                                             on_record=lambda _: ctx.advance())
                run.fields["rewrites"] = dict(result.rewrites)
                run.cost = result.cost.to_dict()
        return result

    result = asyncio.run(go())
    cost = result.cost.to_dict()
    return StageResult(ctx.outputs(), f"{result.turns} turns answered; rewrites: {statuses_line(result.rewrites)}; "
                       f"calls {cost.get('calls', 0)}, cached {cost.get('cached', 0)}", cost=cost)


@dataclass(frozen=True)
class RagIndexSettings(IndexSettings):
    """Settings of ``rag_index``: how the index is built and searched
    (:class:`~turnwise.rag.index.IndexSettings`, saved with it), plus the corpus's format.

    Attributes:
        corpus_format: ``auto``, ``jsonl`` (documents ``{id, text, title?}``), ``dir`` (a folder of .txt/.md) or
            ``canard`` (CANARD's answer spans).
        overwrite: replace an existing index folder.
    """

    corpus_format: str = field(default="auto", metadata={"cli": "--from"})
    overwrite: bool = False


def rag_index(ctx: StageContext) -> StageResult:
    """Chunk a corpus by tokens, embed it and index it for BM25; saved so that later runs embed nothing again."""
    from turnwise.errors import ConfigError
    from turnwise.rag.corpus import read_corpus
    from turnwise.rag.index import RagIndex

    s, out = ctx.settings, ctx.output("index")
    if out.exists() and any(out.iterdir()) and not s.overwrite:
        raise ConfigError(f"{out} exists; pass --overwrite to replace it")
    documents = read_corpus(ctx.input("corpus"), s.corpus_format)
    built = RagIndex.build(documents, IndexSettings(**{f.name: getattr(s, f.name) for f in fields(IndexSettings)}),
                           on_progress=ctx.progress)
    built.save(out, overwrite=True)
    return StageResult(ctx.outputs(), f"{len(built)} chunks of {len(documents)} documents ({s.kind}, "
                       f"{s.chunk_tokens} tokens per chunk)",
                       counts={"chunks": len(built), "documents": len(documents)})


RAG = Stage("rag", "Multi-turn RAG over an index: rewrite each follow-up, retrieve, answer with the history.",
            RagSettings, rag,
            inputs=(Port("conversations", "conversations (any format turnwise reads), or rewrite data (see --from)"),
                    Port("index", "an index folder written by rag_index (`turnwise rag index`)")),
            models=(Port("model", "the answering model"),
                    Port("rewriter", "rewrites follow-ups (default: the answering model)", required=False)),
            outputs=(Output("answers", "answers.jsonl", "one record per conversation, every turn with the query "
                                                        "searched and the chunks it found"),), primary="model")
RAG_INDEX = Stage("rag_index", "Chunk, embed (MiniLM, offline) and index a corpus for hybrid retrieval.",
                  RagIndexSettings, rag_index,
                  inputs=(Port("corpus", "JSONL documents {id, text, title?}, a folder of .txt/.md, or CANARD"),),
                  outputs=(Output("index", "index", "the index folder: chunks, vectors, BM25", folder=True),))


def rewrite_eval(ctx: StageContext) -> StageResult:
    """BLEU, ROUGE-1/L and exact match against the human rewrites, next to the unchanged-question baseline."""
    import json
    from collections import Counter

    from turnwise.errors import ConfigError
    from turnwise.rag.datasets import read_rewrite_data
    from turnwise.rag.evaluate import evaluate_rewrites, read_predictions
    from turnwise.records import read_stage_output

    s = ctx.settings
    if "model" in ctx.models and ctx.has_input("predictions"):
        raise ConfigError("give a rewriter model or predictions, not both")
    if s.input_format is None:
        raise ConfigError("rewrite data needs its format: --from canard, cast, mudoco or zh-rewrite")
    examples = read_rewrite_data(ctx.input("data"), s.input_format, limit=s.limit or None)
    predicted, statuses = None, None
    if ctx.has_input("predictions"):
        predicted = read_predictions(ctx.input("predictions"), examples)
    if "model" in ctx.models:
        rewrite_turns(ctx, iter(examples))
        wanted = {e.id for e in examples}
        records = [r for r in read_stage_output(ctx.output("rewrites")) if r["id"] in wanted]
        predicted = {r["id"]: r["query"] for r in records}
        statuses = dict(Counter(r["rewrite_status"] for r in records))
    else:
        ctx.output("rewrites").parent.mkdir(parents=True, exist_ok=True)
        ctx.output("rewrites").touch()
    report = evaluate_rewrites(examples, predicted, statuses=statuses)
    lines = [report.table()]
    if statuses is not None:
        lines.append(f"rewriter: {statuses_line(statuses)} (a failed turn is scored as the question itself)")
    lines.append(report.summary_line())
    ctx.output("results").write_text("\n".join(lines) + "\n", encoding="utf-8")
    ctx.output("numbers").write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    return StageResult(ctx.outputs(), report.summary_line(), numbers=report.to_dict())


REWRITE_EVAL = Stage("rewrite_eval", "Score rewrites against human ones (BLEU, ROUGE-1/L, exact match), next to the "
                     "unchanged-question baseline: a rewriter model's, given predictions', or the baseline alone.",
                     RewriteSettings, rewrite_eval,
                     inputs=(Port("data", "turns with human rewrites (see --from)"),
                             Port("predictions", "rewrites to score instead of a model's: `turnwise rewrite` records, "
                                                 "or plain text, one line per turn", required=False)),
                     models=(Port("model", "the rewriter to score", required=False),),
                     outputs=(Output("results", "report.md", "the scores as a table (also printed)"),
                              Output("numbers", "report.json", "the scores"),
                              Output("rewrites", "rewrites.jsonl", "the rewriter's records (resumable; empty without "
                                                                   "a model)")), primary="model")
