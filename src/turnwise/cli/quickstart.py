"""`turnwise quickstart`: the offline end-to-end run the README's main command starts."""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console


def quickstart(
    out_dir: Annotated[Path, typer.Argument(help="Where each seed's run and the results go.")
                       ] = Path("runs/quickstart"),
    fast: Annotated[bool, typer.Option(help="The recipe's fast: block, one seed: checks the wiring in under a "
                                            "minute.")] = False,
    seeds: Annotated[str | None, typer.Option(help="Comma-separated seeds (default: 0,1,2,3,4; with --fast, 0).")
                     ] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="Override for every seed: STAGE.SETTING=VALUE "
                                                   "(repeatable), as in `turnwise run`.")] = None,
    jobs: Annotated[int, typer.Option(help="Seeds run at once, each in its own process (0: one more than the CPU "
                                           "cores, at most one per seed; 1: one at a time, with the live progress "
                                           "view).")
                    ] = 0,
    recipe: Annotated[Path | None, typer.Option(help="Another recipe with a toy_eval stage named eval, run the "
                                                     "same way (recipes/capo-smollm2.yaml: the comparison on a "
                                                     "pretrained model).")] = None,
) -> None:
    """Run the quickstart recipe (a tiny model, the whole loop, offline, on a CPU) for each seed and print the
    held-out accuracy over the seeds — SFT, the matched and the every-turn SFT baselines, CaPO-DPO, on-policy
    CaPO-DPO and its second round, best-of-N DPO; free-running and teacher-forced — with every model's paired
    difference to each baseline and the verdict."""
    from turnwise.cli.run import plan_table, progress_view, summary_table
    from turnwise.quickstart.run import SEEDS, run_quickstart

    try:
        chosen = [int(s) for s in seeds.split(",")] if seeds else None
    except ValueError:
        raise typer.BadParameter(f"--seeds {seeds!r}: expected comma-separated integers such as 0,1,2") from None
    warnings.filterwarnings("ignore", category=FutureWarning)  # deprecation notices of the libraries TRL drives
    console = Console()
    views = contextlib.ExitStack()  # the running seed's progress view

    def on_plan(seed: int, plan: object) -> object:
        """Each seed's plan and progress view; the last seed's view closes first."""
        views.close()
        console.print(plan_table(plan))
        return views.enter_context(progress_view(plan))

    count = len(chosen) if chosen else (1 if fast else len(SEEDS))
    # one more process than cores: a tiny model runs on one thread, and the spare keeps every core busy when the
    # seeds do not divide evenly (5 seeds on 2 cores: 3 + 2, not 2 + 2 + 1)
    workers = min(count, (os.cpu_count() or 1) + 1) if jobs == 0 else jobs
    if workers > 1 and count > 1:
        console.print(f"{count} seeds, {min(workers, count)} at a time, each in its own process; a line as each "
                      "finishes (each seed's report has its stages)")

    def on_seed(seed: int, run: object) -> None:
        if workers > 1 and count > 1:
            console.print(f"seed {seed}: {len(run.outcomes)} stages in {run.wall_s:.0f} s ({run.report})")

    with views:
        result = run_quickstart(out_dir, seeds=chosen, fast=fast, sets=sets or [], on_plan=on_plan, jobs=workers,
                                on_seed=on_seed, recipe=recipe)
    for run in result.runs:
        console.print(summary_table(run))
    typer.echo("")
    typer.echo(result.table.rstrip())
    typer.echo(f"\nresults: {out_dir / 'results.md'}, {out_dir / 'results.html'} (per-turn plot); each seed's report: "
               + ", ".join(str(r.report) for r in result.runs))

