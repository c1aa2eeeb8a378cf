"""Entry point of the `turnwise` command.

Every command is a thin wrapper: it parses options, builds a config, calls a pure core and reports.
Errors a user can fix (bad input, bad settings, a missing extra) print one line and exit with code 2;
Ctrl-C exits with 130 and a hint that re-running the same command resumes.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
from collections.abc import Callable

import typer

from turnwise.errors import TurnwiseError


def _options(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More logs: -v info, -vv debug."),
) -> None:
    """Make chat models better at multi-turn conversation."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


# Each command's module is imported only by the function that registers it, and `turnwise CMD ...` registers
# CMD alone: a command pays for its own imports, not every other command's (the RAG CLI alone imports for a
# quarter of a second). Command modules import their heavy dependencies inside the command bodies. A stage's
# command is generated from its declaration (turnwise.cli.command): the very adapter and settings a recipe stage
# of that kind runs.
def _stage(name: str, stage: str) -> Callable[[typer.Typer], None]:
    def add(app: typer.Typer) -> None:
        from turnwise.cli.command import stage_command

        app.command(name)(stage_command(stage))

    return add


def _group(module: str) -> Callable[[typer.Typer], None]:
    def add(app: typer.Typer) -> None:
        app.add_typer(importlib.import_module(f"turnwise.cli.{module}").app, name=module)

    return add


def _command(name: str, module: str, function: str) -> Callable[[typer.Typer], None]:
    def add(app: typer.Typer) -> None:
        app.command(name)(getattr(importlib.import_module(f"turnwise.cli.{module}"), function))

    return add


COMMANDS: dict[str, Callable[[typer.Typer], None]] = {
    "convert": _command("convert", "convert", "convert"),
    **{name: _stage(name, stage) for name, stage in (
        ("generate", "generate"), ("simulate", "simulate"), ("ask-data", "ask_data"), ("capo", "capo"),
        ("score", "score"), ("bestofn", "bestofn"))},
    "train": _group("train"),
    "detect": _group("detect"),  # detect IN OUT (run), detect train
    "eval": _group("eval"),  # multi-turn evaluation: answer, judge, report, run, sharded
    "rewrite": _group("rewrite"),  # multi-turn RAG: rewrite follow-ups, retrieve, answer
    "rag": _group("rag"),
    "run": _command("run", "run", "run"),  # the recipe runner: stages chained, outputs content-addressed
    "quickstart": _command("quickstart", "quickstart", "quickstart"),
    "show-mask": _command("show-mask", "mask", "show_mask"),
    "tiny-model": _command("tiny-model", "tiny", "tiny_model"),
    "model-path": _command("model-path", "tiny", "model_path"),
}


def build_app(only: str | None = None) -> typer.Typer:
    """The ``turnwise`` command with every command, or only ``only`` (what running that command needs)."""
    app = typer.Typer(
        name="turnwise",
        help="Make chat models better at multi-turn conversation.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        rich_markup_mode="rich",
    )
    app.callback()(_options)
    for name, add in COMMANDS.items():
        if only is None or name == only:
            add(app)
    return app


@functools.cache
def _full_app() -> typer.Typer:
    return build_app()


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # every command, built on first use (tests drive it with typer's CliRunner)
        return _full_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user-facing errors become one line on stderr and exit code 2."""
    args = sys.argv[1:] if argv is None else argv
    name = next((a for a in args if not a.startswith("-")), None)  # the only options before it are -v's
    try:
        build_app(name if name in COMMANDS else None)(args=args, prog_name="turnwise")
    except TurnwiseError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted: finished records are saved; run the same command again to resume", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
