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
    # dependencies inside the command bodies, never at module level.
    from turnwise.cli import convert, generate, mask, quickstart, simulate, tiny, train

    app.command("convert")(convert.convert)
    app.command("generate")(generate.generate)
    app.command("show-mask")(mask.show_mask)
    app.command("tiny-model")(tiny.tiny_model)
    app.command("quickstart")(quickstart.quickstart)
    app.command("simulate")(simulate.simulate)
    app.command("ask-data")(simulate.ask_data)
    app.add_typer(train.app, name="train")

    from turnwise.cli import capo, detect  # context-dependence detection and CaPO pairs

    app.command("detect")(detect.detect)
    app.command("capo")(capo.capo)

    from turnwise.cli import bestofn, score  # AI-feedback scores (LongReward) and best-of-N pairs

    app.command("score")(score.score)
    app.command("bestofn")(bestofn.bestofn)

    from turnwise.cli import eval as eval_cli  # multi-turn evaluation: answer, judge, report, run

    app.add_typer(eval_cli.app, name="eval")

    from turnwise.cli import rag, rewrite  # multi-turn RAG: rewrite follow-ups, retrieve, answer

    app.add_typer(rewrite.app, name="rewrite")
    app.add_typer(rag.app, name="rag")

    from turnwise.cli import run as run_cli  # the recipe runner: stages chained, outputs content-addressed

    app.command("run")(run_cli.run)


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
