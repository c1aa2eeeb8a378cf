"""`turnwise run RECIPE.yaml`: run a recipe's stages in order, each skipped when its output is complete.

    turnwise run recipes/quickstart.yaml --fast                 # the offline loop, small
    turnwise run recipes/quickstart.yaml --dry-run              # the plan: keys, cached or to run, and why
    turnwise run recipes/quickstart.yaml --set train_dpo.beta=0.2     # re-runs train_dpo, eval, report
    turnwise run recipes/quickstart.yaml --from capo            # capo and every later stage again
    turnwise run recipes/quickstart.yaml --only eval            # eval alone (its inputs must be complete)
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from turnwise.cli.options import stderr

ACTION_STYLE = {"cached": "green", "run": "yellow", "resume": "yellow", "forced": "magenta", "skipped": "dim"}


def run(
    recipe: Annotated[Path, typer.Argument(help="The recipe (YAML): models and stages, see docs/recipes.md.")],
    fast: Annotated[bool, typer.Option(help="Apply the recipe's fast: block (a small run that checks the wiring).")
                    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Print the plan (each stage's key, cached or to run, and why); "
                                               "run nothing.")] = False,
    from_stage: Annotated[str | None, typer.Option("--from", help="Run this stage and every later one again, "
                                                                  "even where complete.")] = None,
    only: Annotated[str | None, typer.Option(help="Run only this stage (again); its inputs must be complete.")
                    ] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="Override: STAGE.SETTING=VALUE, "
                                                   "models.NAME.FIELD=VALUE, seed=N, out_dir=PATH (repeatable).")
                    ] = None,
) -> None:
    """Run a recipe: every stage whose inputs and settings are unchanged is cached, the rest runs in order."""
    from turnwise.recipe import load_recipe, make_plan, run_plan

    if from_stage and only:
        raise typer.BadParameter("give --from or --only, not both")
    loaded = load_recipe(recipe, fast=fast, sets=sets or [])
    plan = make_plan(loaded, from_stage=from_stage, only=only)
    console = Console()
    console.print(plan_table(plan))
    if dry_run:
        return
    warnings.filterwarnings("ignore", category=FutureWarning)  # deprecation notices of the libraries TRL drives
    with progress_view(plan) as observe:
        result = run_plan(plan, on_event=observe)
    console.print(summary_table(result))
    ran = sum(o.status == "ran" for o in result.outcomes)
    cached = sum(o.status == "cached" for o in result.outcomes)
    typer.echo(f"{ran} stages ran, {cached} cached, in {result.wall_s:.1f} s; report: {result.report}")


def plan_table(plan: Any) -> Table:
    """Stage, kind, key, action and why, one row per stage."""
    recipe = plan.recipe
    title = f"{recipe.path}{' --fast' if recipe.fast else ''} → {recipe.out_dir}"
    table = Table(title=title, title_justify="left")
    for column in ("stage", "kind", "key", "action", "why"):
        table.add_column(column, overflow="fold")
    for stage in plan.stages:
        style = ACTION_STYLE.get(stage.action, "")
        table.add_row(stage.name, stage.kind.name, stage.key[:12], f"[{style}]{stage.action}[/]", escape(stage.reason))
    return table


def summary_table(result: Any) -> Table:
    """What each stage did in this run and its one-line result."""
    table = Table(title=f"turnwise run → {result.plan.recipe.out_dir}", title_justify="left")
    for column in ("stage", "this run", "s", "result"):
        table.add_column(column, overflow="fold")
    for outcome in result.outcomes:
        record = outcome.record or {}
        seconds = f"{outcome.wall_s:.1f}" if outcome.status == "ran" else ""
        table.add_row(outcome.stage.name, outcome.status, seconds, escape(str(record.get("summary", ""))))
    return table


@contextmanager
def progress_view(plan: Any) -> Iterator[Any]:
    """An observer for :func:`turnwise.recipe.run_plan`: a live table of stages on a terminal, lines otherwise."""
    if not stderr.is_terminal:
        yield _line_observer(len(plan.stages))
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn("{task.fields[mark]}"), TextColumn("{task.description}", style="bold"), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.fields[note]}")]
    with Progress(*columns, console=stderr, transient=False) as progress:
        tasks = {s.name: progress.add_task(s.name, total=None, start=False, mark="·", note=s.action)
                 for s in plan.stages}
        yield lambda event: _update(progress, tasks[event.stage], event)


def _update(progress: Any, task: Any, event: Any) -> None:
    if event.event in ("cached", "skipped"):
        progress.update(task, total=1, completed=1 if event.event == "cached" else 0, mark="✓" if event.event ==
                        "cached" else "-", note=event.event)
    elif event.event == "start":
        progress.start_task(task)
        progress.update(task, mark="▶", note="running")
    elif event.event == "progress":
        progress.update(task, completed=event.done, total=event.total)
    elif event.event == "done":
        total = progress.tasks[task].total
        progress.update(task, total=total or 1, completed=total or 1, mark="✓", note=escape(event.summary[:80]))
        progress.stop_task(task)
    elif event.event == "failed":
        progress.update(task, mark="✗", note=escape(event.summary[:80]))
        progress.stop_task(task)


def _line_observer(count: int) -> Any:
    names: list[str] = []
    started: dict[str, float] = {}

    def observe(event: Any) -> None:
        if event.event == "progress":
            return
        if event.stage not in names:
            names.append(event.stage)
        where = f"[{names.index(event.stage) + 1}/{count}] {event.stage}"
        if event.event == "start":
            started[event.stage] = time.perf_counter()
            stderr.print(f"{where}: running...", highlight=False, soft_wrap=True)
        elif event.event in ("done", "cached"):
            took = f" in {event.wall_s:.1f} s" if event.event == "done" else ""
            stderr.print(f"{where}: {'ran' if event.event == 'done' else 'cached'}{took}: {escape(event.summary)}",
                         highlight=False, soft_wrap=True)
        else:
            stderr.print(f"{where}: {event.event} {escape(event.summary)}", highlight=False, soft_wrap=True)

    return observe
