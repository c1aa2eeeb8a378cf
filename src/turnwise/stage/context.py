"""What an adapter gets (:class:`StageContext`) and gives back (:class:`StageResult`), on the command line and in
a recipe alike.

An adapter is one small function over a stage core::

    def run(ctx: StageContext) -> StageResult:
        dialogues = ctx.conversations("dialogues")            # a file in any format, or a stage's records
        ctx.total(len(dialogues))
        async def go():
            async with ctx.open_models("negative") as (model,):        # behind the response cache
                with ctx.records("records") as run:                    # resumable; manifest beside it
                    result = await run_core(dialogues, run.store, ctx.settings, model,
                                            on_record=lambda _: ctx.advance())
                    run.cost = result.cost.to_dict()
        asyncio.run(go())
        return StageResult({"records": "records.jsonl"}, "one line that says what it did")

Where the files go is the context's business (:class:`Layout`): a recipe stage writes into its own folder
``OUT/<name>-<key[:12]>``; a command writes its main output where ``OUT`` says and the others beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turnwise.errors import ConfigError
from turnwise.models.base import ModelSpec
from turnwise.records import RecordStore, RunManifest
from turnwise.stage.spec import Stage

if TYPE_CHECKING:
    from turnwise.data.formats import SkipReport
    from turnwise.data.schema import Conversation

log = logging.getLogger(__name__)
IN_PROCESS = ("local", "vllm")


@dataclass
class StageResult:
    """What a stage leaves behind.

    Attributes:
        outputs: output name → path relative to the stage folder (every name the stage declares).
        summary: one line for the progress view, the report and the command's last line.
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
    """A model as a stage uses it: its name (a recipe's name for it, or the command's ``--model``) and its spec.

    In the response cache an in-process model is keyed by its weights (:mod:`turnwise.models.identity`), so a
    retrained folder is never answered with the old weights' completions.
    """

    name: str
    spec: ModelSpec


@dataclass(frozen=True)
class Layout:
    """Where a stage's files go.

    Attributes:
        dir: the folder its files go in.
        prefix: put before every file name in ``dir`` (a command's ``OUT`` stem and a dot, so that ``pairs.jsonl``
            gets ``pairs.records.jsonl`` beside it); empty in a stage folder.
        main: the main output's own path when the user chose it (a command's ``OUT``), else None.
    """

    dir: Path
    prefix: str = ""
    main: Path | None = None

    @classmethod
    def for_command(cls, stage: Stage, out: Path) -> Layout:
        """A command's layout: ``OUT`` is the main output (a file, or a folder the others go in) or, for a
        stage with ``out_dir``, the stage folder itself."""
        if stage.out_dir:
            return cls(out)
        if stage.outputs and stage.outputs[0].folder:
            return cls(out, "", out)
        return cls(out.parent, out.stem + ".", out)


@dataclass
class StageRun:
    """One record file being written: the store, and what goes into its manifest when it ends.

    Attributes:
        store: the resumable records.
        cost: the run's cost, as the manifest stores it.
        counts: added to the store's counts.
        fields: extra manifest fields.
        status: ``complete`` once the block ends normally, ``interrupted`` on Ctrl-C or cancellation, else
            ``error``.
    """

    store: RecordStore
    cost: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    status: str = "error"


@dataclass
class StageContext:
    """Everything a stage's adapter needs; see the module docstring.

    Attributes:
        stage: the stage's declaration.
        name: the stage's name in the recipe, or the command's name.
        layout: where its files go.
        settings: its settings, resolved.
        inputs: input name → the files or folders it reads.
        models: role → the model for it.
        labels: input name → what each input is, for manifests (a stage name or a path).
        cache_path: the response cache (None: no cache).
        key: its content address in a recipe (sha256 hex), else None.
        retry_failed: forget the failed records of an earlier run, so that they are tried again.
        hasher: file hashes, shared by a recipe run (None: none kept).
        on_progress: called with (items done, total or None) as the stage advances.
        torch_ready: called before torch runs in this process (the recipe runner quiets the libraries' progress
            bars and sets the thread count, once per run).
        say: tells the user something worth knowing (resuming, skipped input); the command prints it.
    """

    stage: Stage
    name: str
    layout: Layout
    settings: Any
    inputs: dict[str, list[Path]]
    models: dict[str, ResolvedModel]
    labels: dict[str, list[str]]
    cache_path: Path | None
    key: str | None = None
    retry_failed: bool = False
    hasher: Any = None
    on_progress: Callable[[int, int | None], None] | None = None
    torch_ready: Callable[[], None] = lambda: None
    say: Callable[[str], None] = log.info
    runs: list[StageRun] = field(default_factory=list)
    skipped: dict[str, SkipReport] = field(default_factory=dict)
    input_not_ok: dict[str, int] = field(default_factory=dict)
    backends: dict[str, Any] = field(default_factory=dict)
    _done: int = 0
    _total: int | None = None

    # -- inputs --------------------------------------------------------------------------------------
    def input(self, name: str) -> Path:
        """The one path of input ``name``."""
        [path] = self.inputs[name]
        return path

    def has_input(self, name: str) -> bool:
        return bool(self.inputs.get(name))

    def conversations(self, port: str, *, limit: int | None = None) -> list[Conversation]:
        """The conversations of input ``port``: a file in any format turnwise reads, or a stage's ``ok`` records.

        The settings' ``input_format``, ``skip_invalid`` and ``limit`` apply when the stage has them; skipped
        malformed records, and an earlier stage's records that are not ``ok``, are counted in the manifest of every
        record file the stage writes.
        """
        from turnwise.records import read_stage_output
        from turnwise.stage.inputs import is_stage_output, read_conversations

        s = self.settings
        limit = getattr(s, "limit", 0) if limit is None else limit
        conversations, report = read_conversations(self.input(port), limit, getattr(s, "input_format", None),
                                                   skip_invalid=getattr(s, "skip_invalid", False))
        if report is not None and report.total:
            self.skipped[port] = report
            self.say(f"{self.input(port)}: {report.summary()}")
        elif report is None and is_stage_output(self.input(port)):
            self.input_not_ok[port] = sum(r["status"] != "ok" for r in read_stage_output(self.input(port)))
        return conversations

    def conversation_file(self, port: str, limit: int = 0) -> Path:
        """Input ``port`` as a plain conversation file a trainer can read (stage records are exported first)."""
        from turnwise.stage.inputs import is_stage_output, read_conversations

        path = self.input(port)
        if not is_stage_output(path) and not limit:
            return path
        from turnwise.data.formats import write_records

        target = self.path(f"{port}.openai.jsonl")
        write_records(target, read_conversations(path, limit)[0], "openai")
        return target

    # -- outputs -------------------------------------------------------------------------------------
    def output(self, name: str) -> Path:
        """Where output ``name`` goes."""
        declared = self.stage.output(name)
        if self.layout.main is not None and declared is self.stage.outputs[0]:
            return self.layout.main
        return self.path(declared.file)

    def path(self, relative: str) -> Path:
        """A file of the stage's own (scratch files, per-model answers...), beside its outputs."""
        return self.layout.dir / f"{self.layout.prefix}{relative}"

    def relative(self, path: Path) -> str:
        """``path`` as the stage's result names it: relative to its folder when inside it."""
        try:
            return str(path.relative_to(self.layout.dir))
        except ValueError:
            return str(path)

    def outputs(self) -> dict[str, str]:
        """Every declared output, as :class:`StageResult` names it."""
        return {o.name: self.relative(self.output(o.name)) for o in self.stage.outputs}

    # -- progress ------------------------------------------------------------------------------------
    def total(self, total: int | None) -> None:
        """Set how many items the stage works through (for the progress view)."""
        self._total = total
        self._report()

    def progress(self, done: int, total: int | None) -> None:
        """Set how many items are done, of how many (for work that reports its own count)."""
        self._done, self._total = done, total
        self._report()

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more items done."""
        self._done += n
        self._report()

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self._done, self._total)

    # -- models --------------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def open_models(self, *roles: str) -> AsyncIterator[list[Any]]:
        """The models of ``roles`` (None for a role the stage was not given), each behind the response cache.

        Roles with the same spec share one backend, so a local model is loaded once. On the way out every
        backend is closed, then the cache; the backends stay in ``backends`` (roles joined by ", " → backend)
        so that a manifest can report their traffic.
        """
        from turnwise.models.base import load_model
        from turnwise.models.cache import CachedChatModel, ResponseCache

        specs = [self.models[r].spec if r in self.models else None for r in roles]
        if any(_in_process(s) for s in specs if s is not None):
            self.torch_ready()
        backends: dict[str, Any] = {}
        cache = None
        try:
            for spec in specs:
                if spec is not None and _key(spec) not in backends:
                    backends[_key(spec)] = load_model(spec)
            for key, backend in backends.items():
                sharing = [r for r, s in zip(roles, specs, strict=True) if s is not None and _key(s) == key]
                self.backends[", ".join(sharing)] = backend
            cache = ResponseCache(self.cache_path) if self.cache_path else None
            wrapped = {k: CachedChatModel(b, cache) if cache is not None else b for k, b in backends.items()}
            yield [wrapped[_key(s)] if s is not None else None for s in specs]
        finally:
            for backend in backends.values():
                await backend.aclose()
            if cache is not None:
                cache.close()

    def model_path(self, role: str) -> str:
        """The hub id or folder of the model of ``role`` (for trainers, which load it themselves)."""
        if role not in self.models:
            raise ConfigError(f"stage {self.name}: no model for the role {role!r}")
        return self.models[role].spec.model

    # -- records -------------------------------------------------------------------------------------
    def manifest_config(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """What a manifest records of the run: inputs, models (specs hold no keys), settings, cache, extras."""
        from turnwise.stage.settings import plain_settings

        return {"stage": self.stage.name, "inputs": self.labels,
                "models": {role: {"name": m.name, **m.spec.to_dict()} for role, m in self.models.items()},
                "settings": plain_settings(self.settings, tuple(self.stage.provided)),
                "cache": str(self.cache_path) if self.cache_path else None, **(extra or {})}

    @contextlib.contextmanager
    def records(self, output: str, extra: dict[str, Any] | None = None, *, manifest_for: str | None = None
                ) -> Iterator[StageRun]:
        """A resumable record file (output ``output``, or a file of the stage's own) and its manifest.

        The manifest (beside ``manifest_for``'s output when given) is finished however the block ends:
        ``complete``, ``interrupted`` (Ctrl-C, cancellation) or ``error``, with the store's counts, the
        skipped input records and what the block put in the :class:`StageRun`.
        """
        path = self._record_path(output)
        store = RecordStore(path, retry_failed=self.retry_failed)
        target = self._record_path(manifest_for) if manifest_for else path
        manifest = RunManifest(target, self.stage.name, self.manifest_config(extra))
        run = StageRun(store)
        if store.resumed:
            self.say(f"resuming: {store.resumed} records already in {path}")
        self.advance(store.resumed)
        try:
            yield run
            run.status = "complete"
        except (KeyboardInterrupt, asyncio.CancelledError):
            run.status = "interrupted"
            raise
        finally:
            store.close()
            self.runs.append(run)
            counts, fields = {**store.counts, **run.counts}, dict(run.fields)
            if self.input_not_ok:
                counts["input_not_ok"] = sum(self.input_not_ok.values())
            if any(report.total for report in self.skipped.values()):
                counts["skipped_invalid"] = sum(r.total for r in self.skipped.values())
                fields["skipped_invalid"] = {port: r.to_dict() for port, r in self.skipped.items()}
            traffic = {roles: b.traffic() for roles, b in self.backends.items() if hasattr(b, "traffic")}
            if traffic:
                fields["traffic"] = traffic
            manifest.finish(run.status, counts, run.cost, reasons=dict(store.reasons), **fields)

    def _record_path(self, name: str) -> Path:
        return self.output(name) if name in self.stage.output_names else self.path(name)


def _key(spec: ModelSpec) -> str:
    return repr(spec.to_dict())


def _in_process(spec: ModelSpec) -> bool:
    try:
        return spec.resolved_backend() in IN_PROCESS
    except ConfigError:
        return False
