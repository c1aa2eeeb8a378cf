"""The plumbing every resumable stage command shares, so that each command keeps only what is its own.

A command reads its input, opens its store and manifest, then::

    resuming(store)
    async with open_models([spec], cache_path) as [model]:
        with stage_run(store, manifest, skipped=skipped) as run, record_progress("generate", total) as on_record:
            result = await run_generate(..., on_record=on_record)
            run.complete(result.cost.to_dict())
    print_summary(store, f"; calls {...}")

``stage_run`` owns the ending: the store is closed and the manifest finished with ``complete``,
``interrupted`` (Ctrl-C, cancellation) or ``error`` whatever happens, so a crashed run still says why.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from turnwise.cli.options import progress_bar, stderr

if TYPE_CHECKING:
    from turnwise.data.formats import SkipReport
    from turnwise.models.base import ModelSpec
    from turnwise.records import RecordStore, RunManifest


def cache_path(cache: Path | None, no_cache: bool) -> Path | None:
    """The response cache file to use: ``--cache``, else the default; None with ``--no-cache``."""
    from turnwise.models.cache import default_cache_path

    return None if no_cache else (cache or default_cache_path())


@contextlib.asynccontextmanager
async def open_models(specs: Sequence[ModelSpec | None], cache_path: Path | None) -> AsyncIterator[list[Any]]:
    """The models of ``specs`` (None stays None), each behind one response cache when there is one.

    Two roles with the same spec share one backend, so a local model is loaded once. On the way out
    every backend is closed, then the cache.
    """
    from turnwise.models.base import load_model
    from turnwise.models.cache import CachedChatModel, ResponseCache

    backends: dict[str, Any] = {}
    cache = None
    try:
        for spec in specs:
            if spec is not None and repr(spec.to_dict()) not in backends:
                backends[repr(spec.to_dict())] = load_model(spec)
        cache = ResponseCache(cache_path) if cache_path else None
        models = {key: CachedChatModel(b, cache) if cache is not None else b for key, b in backends.items()}
        yield [models[repr(spec.to_dict())] if spec is not None else None for spec in specs]
    finally:
        for backend in backends.values():
            await backend.aclose()
        if cache is not None:
            cache.close()


@dataclass
class StageRun:
    """How a run ended, filled in by the command as it goes; ``stage_run`` writes it to the manifest.

    Attributes:
        store: the run's records.
        manifest: its manifest; None until the command can write one (then nothing is finished).
        status: ``error`` until ``complete()``; ``interrupted`` on Ctrl-C or cancellation.
        cost: the run's cost, as the manifest stores it.
        counts: added to the store's counts (after them, in this order).
        fields: extra manifest fields, written after ``reasons``.
    """

    store: RecordStore
    manifest: RunManifest | None = None
    status: str = "error"
    cost: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)

    def complete(self, cost: dict[str, Any]) -> None:
        self.cost, self.status = cost, "complete"


@contextlib.contextmanager
def stage_run(store: RecordStore, manifest: RunManifest | None = None, *, skipped: SkipReport | None = None,
              on_close: Callable[[StageRun], None] | None = None) -> Iterator[StageRun]:
    """Close the store and finish the manifest however the run ends, with its status, counts and cost.

    Args:
        store: the run's records; closed first.
        manifest: finished last (set ``run.manifest`` later when it is made inside the block).
        skipped: malformed input records, counted as ``skipped_invalid`` and reported in full.
        on_close: called once the store is closed and before the manifest is finished, for figures read
            back from the finished records (stats, exported pairs); it may add to ``run.counts``/``fields``.
    """
    run = StageRun(store, manifest)
    try:
        yield run
    except (KeyboardInterrupt, asyncio.CancelledError):
        run.status = "interrupted"
        raise
    finally:
        store.close()
        if on_close is not None:
            on_close(run)
        if run.manifest is not None:
            counts, fields = {**store.counts, **run.counts}, dict(run.fields)
            if skipped is not None:
                counts["skipped_invalid"] = skipped.total
                fields["skipped_invalid"] = skipped.to_dict()
            run.manifest.finish(run.status, counts, run.cost, reasons=dict(store.reasons), **fields)


@contextlib.contextmanager
def record_progress(description: str, total: int | None, resumed: int = 0) -> Iterator[Callable[[Any], None]]:
    """A progress bar (see ``options.progress_bar``) and the ``on_record`` callback that advances it."""
    with progress_bar(description, total) as progress:
        if resumed:
            progress.advance(0, resumed)
        yield lambda _: progress.advance(0)


def resuming(store: RecordStore, what: str = "records") -> None:
    """Say how much of the output an earlier run already wrote, if any."""
    if store.resumed:
        stderr.print(f"resuming: {store.resumed} {what} already in {store.path}")


def print_summary(store: RecordStore, detail: str = "", *, new: str = "new", top: int = 5,
                  escape_reasons: bool = False) -> None:
    """``OUT: failed 1, ok 9 (9 new)<detail>``, then the ``top`` most common failure reasons."""
    counts = ", ".join(f"{k} {v}" for k, v in sorted(store.counts.items()))
    stderr.print(f"{store.path}: {counts} ({store.written} {new}){detail}")
    for reason, count in store.reasons.most_common(top):
        stderr.print(f"  {count} × {escape(reason) if escape_reasons else reason}")
