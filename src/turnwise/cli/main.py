"""Entry point of the `turnwise` command.

Every command is a thin wrapper: it parses options, builds a config, calls a pure core and reports.
Errors a user can fix (bad input, bad settings, a missing extra) print one line and exit with code 2;
Ctrl-C exits with 130 and a hint that re-running the same command resumes.
"""

from __future__ import annotations

import logging
import sys

import typer

from turnwise.errors import TurnwiseError

app = typer.Typer(
    name="turnwise",
    help="Make chat models better at multi-turn conversation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


@app.callback()
def _options(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More logs: -v info, -vv debug."),
) -> None:
    """Make chat models better at multi-turn conversation."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _register() -> None:
    # Imported here so that `turnwise --help` stays fast: command modules import their heavy
    # dependencies inside the command bodies, never at module level. A stage's command is generated from
    # its declaration (turnwise.cli.command): the very adapter and settings a recipe stage of that kind runs.
    from turnwise.cli import convert, mask, quickstart, rag, rewrite, tiny, train
    from turnwise.cli import detect as detect_cli
    from turnwise.cli import eval as eval_cli
    from turnwise.cli import run as run_cli
    from turnwise.cli.command import stage_command

    app.command("convert")(convert.convert)
    for name, stage in (("generate", "generate"), ("simulate", "simulate"), ("ask-data", "ask_data"),
                        ("capo", "capo"), ("score", "score"), ("bestofn", "bestofn")):
        app.command(name)(stage_command(stage))
    app.add_typer(train.app, name="train")
    app.add_typer(detect_cli.app, name="detect")  # detect IN OUT (run), detect train
    app.add_typer(eval_cli.app, name="eval")  # multi-turn evaluation: answer, judge, report, run
    app.add_typer(rewrite.app, name="rewrite")  # multi-turn RAG: rewrite follow-ups, retrieve, answer
    app.add_typer(rag.app, name="rag")
    app.command("run")(run_cli.run)  # the recipe runner: stages chained, outputs content-addressed
    app.command("quickstart")(quickstart.quickstart)
    app.command("show-mask")(mask.show_mask)
    app.command("tiny-model")(tiny.tiny_model)
    app.command("model-path")(tiny.model_path)


_register()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user-facing errors become one line on stderr and exit code 2."""
    try:
        app(args=argv)
    except TurnwiseError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted: finished records are saved; run the same command again to resume", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
