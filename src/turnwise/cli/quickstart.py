"""`turnwise quickstart`: the offline end-to-end run the README's main command starts."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from turnwise.cli.options import stderr


def quickstart(
    out_dir: Annotated[Path, typer.Argument(help="Where every step writes its files.")] = Path("runs/quickstart"),
    serve: Annotated[
        bool, typer.Option(help="Also serve the model with `transformers serve` and answer through the OpenAI backend.")
    ] = True,
    fast: Annotated[bool, typer.Option(help="A much smaller run that only checks the wiring (seconds).")] = False,
) -> None:
    """Build a tiny model and run the whole loop on it, offline, on a CPU: SFT, ask model, self-play,
    detection, CaPO and best-of-N pairs, DPO, and a held-out evaluation."""
    from turnwise.quickstart import Step, run_quickstart

    # Deprecation notices from the libraries TRL drives are noise to someone trying the toolkit out.
    warnings.filterwarnings("ignore", category=FutureWarning)
    with stderr.status("running the quickstart (a tiny model on CPU; a minute or two)...") as status:

        def progress(step: Step) -> None:
            stderr.print(f"  {step.name}: {step.seconds:.1f} s", highlight=False)
            status.update(f"running the quickstart: {step.name} done...")

        report = run_quickstart(out_dir, serve=serve, fast=fast, on_step=progress)
    table = Table(title=f"turnwise quickstart → {report.out_dir}", show_lines=False)
    for column in ("step", "result", "s"):
        table.add_column(column, overflow="fold")
    for step in report.steps:
        table.add_row(step.name, step.figure, f"{step.seconds:.1f}")
    console = Console()
    typer.echo("")
    console.print(table)
    typer.echo(f"files: {', '.join(sorted({f for s in report.steps for f in s.files}))}")
    typer.echo("")
    typer.echo(report.results.rstrip())
    typer.echo(f"(also in {report.out_dir / 'results.md'}; total {sum(s.seconds for s in report.steps):.0f} s)")
