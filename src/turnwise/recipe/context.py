"""What an adapter gets (:class:`StageContext`) and gives back (:class:`StageResult`).

An adapter is one small function over a stage core: it reads its inputs from ``ctx.input(...)``, opens its
models with ``ctx.open_models(...)`` (each behind the run's one response cache, ``OUT/cache.sqlite``), writes
its records with ``ctx.records(...)`` (resumable: a stage that was killed picks up where it stopped), and
returns where its outputs are and one line that says what it did.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turnwise.errors import ConfigError
from turnwise.models.base import ModelSpec
from turnwise.recipe.hashing import ContentHasher
from turnwise.records import RecordStore, RunManifest

log = logging.getLogger(__name__)
IN_PROCESS = ("local", "vllm")


@dataclass
class StageResult:
    """What a stage leaves behind.

    Attributes:
        outputs: output name → path relative to the stage folder (every name the kind declares).
        summary: one line for the progress view and the report.
        counts: record counts by status (or rows kept/dropped).
        cost: model calls, cached calls, attempts and tokens of this run.
        numbers: the figures behind the summary (losses, shares, accuracies), for the report's JSON.
    """

    outputs: dict[str, str]
    summary: str = ""
    counts: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass
class ResolvedModel:
    """A model as a stage uses it: the recipe's name for it and the spec to load.

    In the response cache an in-process model is keyed by its weights (:mod:`turnwise.models.identity`), so a
    forced re-run that retrains into the same folder is never answered with the old weights' completions.
    """

    name: str
    spec: ModelSpec


@dataclass
class StageContext:
    """Everything a stage's adapter needs; see the module docstring.

    Attributes:
        name: the stage's name in the recipe.
        kind: its kind.
        key: its content address (sha256 hex).
        dir: its output folder, ``OUT/<name>-<key[:12]>``.
        settings: its settings dataclass, resolved.
        inputs: input name → the files or folders it reads.
        models: role → the model for it.
        labels: input name → the stage names (or file paths) the inputs came from.
        cache_path: the run's response cache.
        hasher: file hashes, shared by the run.
        on_progress: called with (items done, total or None) as the stage advances.
        torch_ready: called before torch runs in this process (the runner then quiets the libraries' progress
            bars and sets the thread count, once per run).
    """

    name: str
    kind: str
    key: str
    dir: Path
    settings: Any
    inputs: dict[str, list[Path]]
    models: dict[str, ResolvedModel]
    labels: dict[str, list[str]]
    cache_path: Path
    hasher: ContentHasher = field(default_factory=ContentHasher)
    on_progress: Callable[[int, int | None], None] | None = None
    torch_ready: Callable[[], None] = lambda: None
    _done: int = 0
    _total: int | None = None

    def input(self, name: str) -> Path:
        """The one path of input ``name``."""
        [path] = self.inputs[name]
        return path

    def has_input(self, name: str) -> bool:
        return bool(self.inputs.get(name))

    def path(self, relative: str) -> Path:
        """A path inside the stage folder."""
        return self.dir / relative

    def total(self, total: int | None) -> None:
        """Set how many items the stage works through (for the progress view)."""
        self._total = total
        self._report()

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more items done."""
        self._done += n
        self._report()

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self._done, self._total)

    @contextlib.asynccontextmanager
    async def open_models(self, *roles: str) -> AsyncIterator[list[Any]]:
        """The models of ``roles`` (None for a role the stage was not given), each behind the run's cache."""
        from turnwise.models.base import load_model
        from turnwise.models.cache import CachedChatModel, ResponseCache

        if any(_in_process(self.models[r].spec) for r in roles if r in self.models):
            self.torch_ready()
        cache = ResponseCache(self.cache_path)
        opened: list[Any] = []
        try:
            for role in roles:
                model = self.models.get(role)
                opened.append(None if model is None else CachedChatModel(load_model(model.spec), cache))
            yield opened
        finally:
            for model in opened:
                if model is not None:
                    await model.aclose()
            cache.close()

    @contextlib.contextmanager
    def records(self, filename: str, stage: str, config: dict[str, Any], *, manifest_for: str | None = None
                ) -> Iterator[tuple[RecordStore, dict[str, Any]]]:
        """A resumable record file in the stage folder and its manifest (``cost`` and extras go in the dict).

        Unlike a fresh run of a command, nothing is deleted: the folder is this stage's alone (its key names
        it), so what is in the file was written by this very stage with these very settings.
        """
        output = self.path(filename)
        manifest = RunManifest(self.path(manifest_for) if manifest_for else output, stage, config)
        store, extra, status = RecordStore(output), {}, "error"
        if store.resumed:
            log.info("%s: resuming, %d records already written", output, store.resumed)
        self.advance(store.resumed)
        try:
            yield store, extra
            status = "complete"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            store.close()
            manifest.finish(status, dict(store.counts), extra.pop("cost", {}), **extra)


def _in_process(spec: ModelSpec) -> bool:
    try:
        return spec.resolved_backend() in IN_PROCESS
    except ConfigError:
        return False


def model_path(ctx: StageContext, role: str) -> str:
    """The hub id or folder of the model of ``role`` (for trainers, which load it themselves)."""
    if role not in ctx.models:
        raise ConfigError(f"stage {ctx.name}: no model for the role {role!r}")
    return ctx.models[role].spec.model
