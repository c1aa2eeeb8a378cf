"""`turnwise rag`: multi-turn retrieval-augmented chat: build an index, then chat or answer a file.

    turnwise rag index corpus.jsonl runs/index                          # chunk, embed (MiniLM, offline), BM25
    turnwise rag index canard_dev.json runs/index --from canard         # CANARD's answer spans as the corpus
    turnwise rag chat --index runs/index --model M --base-url URL       # interactive; one log line per turn
    turnwise rag batch conversations.jsonl answers.jsonl --index runs/index --model M

Each turn: the follow-up is rewritten into a self-contained query (by ``--rewriter-model``, default the
answering model; gated by the context-dependence detector), the index is searched with it, and the
answering model sees the original messages, the retrieved chunks and the history trimmed to ``--budget``.
`index` and `batch` are the stages ``rag_index`` and ``rag`` (:mod:`turnwise.rag.adapter`); `chat` takes the
``rag`` stage's settings and models.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from turnwise.cli.command import command_params, stage_command
from turnwise.cli.run_stage import Param

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Multi-turn RAG: rewrite follow-ups for retrieval, retrieve, answer with the history.")
app.command("index")(stage_command("rag_index"))
app.command("batch")(stage_command("rag"))

_CHAT_OWN = {
    "index": (Path, typer.Option("--index", help="A folder written by `turnwise rag index`.", show_default=False)),
    "system": (str | None, typer.Option("--system", help="System message, kept through every turn.",
                                        show_default=False)),
    "topic": (str | None, typer.Option("--topic", help="What the conversation is about (shown to the rewriter).",
                                       show_default=False)),
    "log": (Path | None, typer.Option("--log", help="Per-turn JSONL log (default rag-chat-<time>.jsonl).",
                                      show_default=False)),
}


def _chat_command() -> Any:
    from turnwise.stage.table import load_stage

    stage = load_stage("rag")
    params = command_params(stage, files=False)
    own = [inspect.Parameter(f"c_{name}", inspect.Parameter.KEYWORD_ONLY,
                             default=inspect.Parameter.empty if name == "index" else None,
                             annotation=Annotated[kind, option]) for name, (kind, option) in _CHAT_OWN.items()]
    signature = inspect.Signature([*own, *(p for p, _ in params.values())])

    def chat(**values: Any) -> None:
        mine = {name: values[f"c_{name}"] for name in _CHAT_OWN}
        _chat(stage, {key: (info, values[key]) for key, (_, info) in params.items()}, mine)

    chat.__signature__ = signature  # type: ignore[attr-defined]
    chat.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
    chat.__doc__ = ("Chat over the index, reading turns from stdin: /reset forgets the conversation, /exit (or EOF) "
                    "ends it.")
    return chat


def _chat(stage: Any, values: dict[str, tuple[Param, Any]], own: dict[str, Any]) -> None:
    from rich.markup import escape

    from turnwise.cli.options import stderr
    from turnwise.cli.run_stage import resolve_models, settings_from
    from turnwise.models.cache import default_cache_path
    from turnwise.stage.context import Layout, StageContext

    run = {info.name: value for info, value in values.values() if info.kind == "run"}
    given = [(info.setting, v) for info, v in values.values() if info.kind == "setting" and v is not None]
    settings = settings_from(stage, given, run["config"], run["set"] or [])
    models = resolve_models(stage, [(info, v) for info, v in values.values() if info.kind == "model"])
    log = own["log"] or Path(f"rag-chat-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
    cache = None if run["no_cache"] else (run["cache"] or default_cache_path())
    ctx = StageContext(stage, "rag chat", Layout(log.parent), settings, {"index": [own["index"]]}, models,
                       {"index": [str(own["index"])]}, cache, say=lambda text: stderr.print(escape(text)))
    asyncio.run(_session(ctx, own, log))
    stderr.print(f"log: {log}")


async def _session(ctx: Any, own: dict[str, Any], log: Path) -> None:
    from turnwise.cli.options import stderr
    from turnwise.rag.adapter import open_engine
    from turnwise.rag.engine import ChatSession
    from turnwise.records import RunManifest
    from turnwise.stage.runner import Cost

    log.parent.mkdir(parents=True, exist_ok=True)
    session_id = time.strftime("%Y%m%dT%H%M%S")
    async with open_engine(ctx, own["index"]) as engine:
        manifest = RunManifest(log, "rag-chat", ctx.manifest_config({"engine": engine.describe(),
                                                                      "system": own["system"], "topic": own["topic"]}))
        turns, cost = 0, Cost()
        with open(log, "a", encoding="utf-8") as handle:

            def write(turn: Any) -> None:
                cost.__iadd__(turn.cost)
                handle.write(json.dumps({"session": session_id, **turn.to_log()}, ensure_ascii=False) + "\n")
                handle.flush()

            session = ChatSession(engine, system=own["system"], topic=own["topic"], on_turn=write)
            while (text := await _read_turn()) is not None:
                if text == "/reset":
                    session.reset()
                    continue
                turn = await session.ask(text)
                turns += 1
                typer.echo(turn.answer if turn.answer is not None else f"[error] {turn.error}")
                stderr.print(f"[dim]searched: {turn.query} | chunks: {', '.join(turn.chunk_ids) or '-'}[/dim]")
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


app.command("chat")(_chat_command())
