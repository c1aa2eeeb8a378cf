"""Run a plan: skip what is complete, run the rest in order, and write each stage's ``stage.json`` last.

    recipe = load_recipe("recipes/quickstart.yaml", fast=True)
    result = run_plan(make_plan(recipe), on_event=print)
    result.report           # OUT/report.md (and report.html beside it)

A stage runs in its own folder, ``OUT/<name>-<key[:12]>``. Its adapter writes records there as it goes;
when it returns, the runner checks that every declared output exists and writes ``stage.json`` (key,
settings, outputs, counts, cost, wall time) atomically. A run killed before that leaves the folder
without ``stage.json``: the next run resumes it (the records already written are skipped, and the calls
that had finished are answered from ``OUT/cache.sqlite``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turnwise.errors import TurnwiseError
from turnwise.models.base import ModelSpec
from turnwise.recipe.plan import STAGE_FILE, Plan, PlannedStage, stage_record
from turnwise.records import atomic_write_text, package_versions
from turnwise.stage.context import Layout, ResolvedModel, StageContext, StageResult
from turnwise.stage.settings import plain_settings

log = logging.getLogger(__name__)


@dataclass
class StageEvent:
    """What the progress view is told.

    Attributes:
        stage: the stage's name.
        event: ``cached``, ``skipped``, ``start``, ``progress``, ``done`` or ``failed``.
        done: items done so far (``progress``).
        total: items in all, when known.
        wall_s: seconds the stage ran (``done``, ``failed``).
        summary: the stage's one line (``done``, ``cached``), or the error (``failed``).
    """

    stage: str
    event: str
    done: int = 0
    total: int | None = None
    wall_s: float = 0.0
    summary: str = ""


Observer = Callable[[StageEvent], None]


@dataclass
class StageOutcome:
    """How one stage went in this run: ``cached``, ``ran``, ``skipped`` or ``failed``."""

    stage: PlannedStage
    status: str
    wall_s: float = 0.0
    record: dict[str, Any] | None = None


@dataclass
class RunResult:
    """Every stage's outcome, the run's wall time, and the report written at the end."""

    plan: Plan
    outcomes: list[StageOutcome] = field(default_factory=list)
    wall_s: float = 0.0
    report: Path | None = None


def run_plan(plan: Plan, *, on_event: Observer | None = None) -> RunResult:
    """Run every stage the plan does not skip or find complete; see the module docstring.

    Raises:
        TurnwiseError: a stage failed (its folder is kept: the next run resumes it), or wrote less than it
            declares.
    """
    from turnwise.recipe.report import write_run_report

    emit = on_event or (lambda _event: None)
    result, start = RunResult(plan), time.perf_counter()
    plan.recipe.out_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_exclusive(plan.recipe.out_dir))
        torch_ready = _Once(lambda: stack.enter_context(quiet_libraries(plan.recipe.torch_threads)))
        try:
            for stage in plan.stages:
                if stage.action in ("cached", "skipped"):
                    record = stage_record(stage.dir, stage.key) if stage.action == "cached" else None
                    result.outcomes.append(StageOutcome(stage, stage.action, record=record))
                    emit(StageEvent(stage.name, stage.action, summary=(record or {}).get("summary", "")))
                    continue
                result.outcomes.append(_run_stage(plan, stage, emit, torch_ready))
        finally:
            plan.hasher.save()
            result.wall_s = time.perf_counter() - start
            result.report = write_run_report(result)
    return result


@contextlib.contextmanager
def _exclusive(out_dir: Path) -> Iterator[None]:
    """Hold ``OUT/.lock`` for the run: two runs writing the same stage folders would corrupt each other."""
    try:
        import fcntl
    except ImportError:  # not on Windows
        yield
        return
    with open(out_dir / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TurnwiseError(f"{out_dir} is in use by another turnwise run; wait for it or use another out_dir"
                                ) from None
        yield  # the lock goes with the file handle, also when the process is killed


class _Once:
    """Call ``fn`` the first time this is called, never again."""

    def __init__(self, fn: Callable[[], Any]):
        self.fn, self.done = fn, False

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            self.fn()


def _run_stage(plan: Plan, stage: PlannedStage, emit: Observer, torch_ready: Callable[[], None]) -> StageOutcome:
    if stage.action == "forced":
        shutil.rmtree(stage.dir, ignore_errors=True)
    stage.dir.mkdir(parents=True, exist_ok=True)
    ctx = build_context(plan, stage, lambda done, total: emit(StageEvent(stage.name, "progress", done, total)))
    ctx.torch_ready = torch_ready
    if stage.kind.torch:
        torch_ready()
    emit(StageEvent(stage.name, "start"))
    started, start = time.time(), time.perf_counter()
    try:
        output = stage.kind.run(ctx)
        _check_outputs(stage, output)
    except BaseException as exc:
        emit(StageEvent(stage.name, "failed", wall_s=time.perf_counter() - start, summary=repr(exc)[:300]))
        raise
    wall = time.perf_counter() - start
    record = _stage_json(stage, ctx, output, started, wall)
    atomic_write_text(stage.dir / STAGE_FILE, json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n")
    emit(StageEvent(stage.name, "done", wall_s=wall, summary=output.summary))
    return StageOutcome(stage, "ran", wall, record)


def _check_outputs(stage: PlannedStage, output: StageResult) -> None:
    for name in stage.kind.output_names:
        path = output.outputs.get(name)
        if path is None or not (stage.dir / path).exists():
            raise TurnwiseError(f"stage {stage.name} ({stage.kind.name}) did not write its output {name!r}"
                                + (f" ({stage.dir / path} is missing)" if path else ""))


def _stage_json(stage: PlannedStage, ctx: StageContext, output: StageResult, started: float,
                wall: float) -> dict[str, Any]:
    return {
        "name": stage.name, "kind": stage.kind.name, "key": stage.key,
        "settings": plain_settings(stage.spec.settings, tuple(stage.kind.provided)),
        "inputs": ctx.labels, "models": dict(stage.spec.models), "outputs": output.outputs,
        "summary": output.summary, "counts": output.counts, "cost": output.cost, "numbers": output.numbers,
        "wall_s": round(wall, 3), "started": _iso(started), "finished": _iso(time.time()),
        "versions": package_versions(), "fingerprint": stage.fingerprint,
    }


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def build_context(plan: Plan, stage: PlannedStage, on_progress: Callable[[int, int | None], None] | None = None
                  ) -> StageContext:
    """The adapter's view of a stage: its inputs and models resolved to paths and specs."""
    inputs: dict[str, list[Path]] = {}
    labels: dict[str, list[str]] = {}
    for port, refs in stage.spec.inputs.items():
        inputs[port] = [output_path(plan, ref.stage, ref.output) if ref.stage else Path(ref.file) for ref in refs]
        labels[port] = [ref.label for ref in refs]
    models = {role: resolve_model(plan, name) for role, name in stage.spec.models.items()}
    return StageContext(stage.kind, stage.name, Layout(stage.dir), stage.spec.settings, inputs, models, labels,
                        plan.recipe.out_dir / "cache.sqlite", key=stage.key, hasher=plan.hasher,
                        on_progress=on_progress)


def output_path(plan: Plan, stage_name: str, output: str) -> Path:
    """Where a complete stage keeps one of its outputs."""
    upstream = plan.get(stage_name)
    record = stage_record(upstream.dir, upstream.key)
    if record is None:
        raise TurnwiseError(f"stage {stage_name} is not complete ({upstream.dir / STAGE_FILE} is missing)")
    return upstream.dir / record["outputs"][output]


def resolve_model(plan: Plan, name: str) -> ResolvedModel:
    """A named model as a stage loads it (a trained model: its stage's folder, in-process unless told otherwise)."""
    ref = plan.recipe.models[name]
    fields = dict(ref.fields)
    if ref.from_stage is not None:
        fields["model"] = str(output_path(plan, ref.from_stage, "model"))
        if fields.get("backend", "auto") == "auto":
            fields["backend"] = "local"
    return ResolvedModel(name, ModelSpec(**fields))


@contextlib.contextmanager
def quiet_libraries(torch_threads: int | None) -> Iterator[None]:
    """No progress bars from transformers and datasets (cores never print), and the torch thread count.

    On a busy small machine one torch thread is often faster for a tiny model than two spinning against each
    other (``torch_threads: 1`` in the quickstart recipe); None leaves torch's choice alone.
    """
    import torch
    from transformers.utils import logging as hf_logging

    threads, hf_bars = torch.get_num_threads(), hf_logging.is_progress_bar_enabled()
    try:
        import datasets

        ds_bars = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()
    except ImportError:
        datasets, ds_bars = None, False
    if torch_threads:
        torch.set_num_threads(torch_threads)
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if hf_bars:
            hf_logging.enable_progress_bar()
        if datasets is not None and ds_bars:
            datasets.enable_progress_bars()
