"""`turnwise quickstart`: the offline end-to-end run the README's main command starts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from turnwise.cli.options import stderr


def quickstart(
    out_dir: Annotated[Path, typer.Argument(help="Where every step writes its files.")] = Path("runs/quickstart"),
    serve: Annotated[
        bool, typer.Option(help="Also serve the model with `transformers serve` and answer through the OpenAI backend.")
    ] = True,
) -> None:
    """Build a tiny model and run every built stage on it, offline, on a CPU."""
    from turnwise.quickstart import run_quickstart

    with stderr.status("running the quickstart (a tiny model on CPU; about a minute)..."):
        report = run_quickstart(out_dir, serve=serve)
    table = Table(title=f"turnwise quickstart → {report.out_dir}", show_lines=False)
    for column in ("step", "result", "s"):
        table.add_column(column, overflow="fold")
    for step in report.steps:
        table.add_row(step.name, step.figure, f"{step.seconds:.1f}")
    typer.echo("")
    from rich.console import Console

    Console().print(table)
    typer.echo(f"files: {', '.join(sorted({f for s in report.steps for f in s.files}))}")
