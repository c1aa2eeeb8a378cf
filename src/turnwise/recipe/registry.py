"""Stage kinds: what each reads, which models it uses, its settings, what it writes, and its adapter.

    @register(Kind("detect", "Label context-dependent user turns.", DetectSettings,
                   inputs=(Port("dialogues", "conversations or dialogue records"),),
                   models=(Port("judge", "optional LLM judge", required=False),), outputs=("detections",)))
    def detect(ctx: StageContext) -> StageResult: ...

The adapters live in :mod:`turnwise.recipe.kinds`; importing it fills :data:`KINDS`. Tests register fake
kinds the same way (:func:`register` with ``replace=True``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from turnwise.recipe.context import StageContext, StageResult

Adapter = Callable[[StageContext], StageResult]
Check = Callable[[Any, dict[str, Any]], list[str]]


@dataclass(frozen=True)
class Port:
    """An input or a model role of a kind.

    Attributes:
        name: the key under the stage's ``inputs:`` or ``models:``.
        doc: what it is, for errors and docs.
        required: a stage of this kind must give it.
        many: takes a list of references (inputs only).
    """

    name: str
    doc: str
    required: bool = True
    many: bool = False


@dataclass(frozen=True)
class Kind:
    """A stage kind.

    Attributes:
        name: the ``kind:`` a stage names.
        doc: one line.
        settings: its settings dataclass (field docs are the settings' docs).
        inputs: the inputs it reads.
        models: the model roles it uses.
        free_models: any role name is accepted (evaluation: one role per model compared); ``models`` then
            lists the reserved ones.
        outputs: what it writes; the first is what a bare ``inputs: {x: STAGE}`` reference means.
        provided: settings fields the runner fills from inputs and models (a trainer's data, model, output),
            with the placeholder used to validate the rest before anything runs.
        version: bump when the adapter changes what it writes: every stage of the kind gets a new key.
        torch: runs torch in-process (the runner then quiets library progress bars and sets the thread count).
        check: extra validation, ``check(settings, models) -> problems`` (``models``: role → model name).
        run: the adapter.
    """

    name: str
    doc: str
    settings: type
    inputs: tuple[Port, ...] = ()
    models: tuple[Port, ...] = ()
    free_models: bool = False
    outputs: tuple[str, ...] = ()
    provided: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    torch: bool = False
    check: Check | None = None
    run: Adapter | None = None

    def port(self, name: str) -> Port | None:
        return next((p for p in self.inputs if p.name == name), None)

    def role(self, name: str) -> Port | None:
        return next((p for p in self.models if p.name == name), None)


KINDS: dict[str, Kind] = {}


def register(kind: Kind, *, replace_existing: bool = False) -> Callable[[Adapter], Adapter]:
    """Decorator: register ``kind`` with the decorated function as its adapter."""

    def wrap(run: Adapter) -> Adapter:
        if kind.name in KINDS and not replace_existing:
            raise ValueError(f"stage kind {kind.name!r} is registered twice")
        KINDS[kind.name] = replace(kind, run=run)
        return run

    return wrap


def kinds() -> dict[str, Kind]:
    """Every registered kind (the shipped adapters are imported on first use)."""
    import turnwise.recipe.kinds  # noqa: F401  (registers the shipped kinds)

    return KINDS
