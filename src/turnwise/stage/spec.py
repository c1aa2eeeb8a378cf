"""What a stage declares: its settings class, inputs, model roles, outputs and its one adapter.

    STAGE = Stage("detect", "Label context-dependent user turns.", DetectSettings, run=detect,
                  inputs=(Port("dialogues", "conversations or dialogue records"),),
                  models=(Port("judge", "optional LLM judge", required=False),),
                  outputs=(Output("detections", "detections.jsonl"),))

The command line (:mod:`turnwise.cli.command`) and the recipe runner (:mod:`turnwise.recipe`) both read this
declaration: the settings class gives the options and the recipe's ``settings:`` keys, the ports give the
input arguments and the ``inputs:`` keys, the roles the ``--*-model`` options and the ``models:`` keys.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from turnwise.stage.context import StageContext, StageResult

Adapter = Callable[["StageContext"], "StageResult"]
Check = Callable[[Any, dict[str, str]], list[str]]


@dataclass(frozen=True)
class Port:
    """An input or a model role of a stage.

    Attributes:
        name: the key under a recipe stage's ``inputs:`` or ``models:``.
        doc: what it is, for ``--help``, errors and docs.
        required: a stage must be given it.
        many: takes several files or stages (inputs only).
        flag: the command-line spelling when it is not ``--<name>`` (``--data`` for DPO's ``pairs``).
        shared: (model roles) the command's unprefixed model options (``--backend``, ``--base-url``...) are this
            role's defaults too; False for a role usually served elsewhere, such as a judge.
    """

    name: str
    doc: str
    required: bool = True
    many: bool = False
    flag: str | None = None
    shared: bool = True

    @property
    def option(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Output:
    """A file or folder a stage writes.

    Attributes:
        name: how recipes refer to it (``STAGE:NAME``).
        file: its path inside the stage folder.
        doc: what it holds.
        folder: it is a folder (a model), not a file.
    """

    name: str
    file: str
    doc: str = ""
    folder: bool = False


@dataclass(frozen=True)
class Stage:
    """A stage: the declaration both the command and the recipe runner read; see the module docstring.

    Attributes:
        name: the recipe's ``kind:`` and the command's name.
        doc: one line.
        settings: its one settings dataclass (field docs are the option and key docs).
        run: the adapter: runs the stage from a :class:`~turnwise.stage.context.StageContext`.
        inputs: what it reads.
        models: the model roles it uses.
        outputs: what it writes; the first is the main one (a bare ``inputs: {x: STAGE}`` reference, the
            command's ``OUT``).
        primary: the role the command's ``--model/-m`` names (other roles: ``--<role>-model``).
        free_models: any role name is a model to compare (evaluation); ``models`` lists the reserved ones.
        provided: settings fields filled from the inputs, models and output (a trainer's data, model,
            output), with the placeholder used to validate the rest before anything runs.
        version: bump when the adapter changes what it writes: every stage of the kind gets a new key.
        torch: runs torch in-process (the recipe runner then quiets library progress bars and sets threads).
        check: extra validation, ``check(settings, models) -> problems`` (``models``: role → model name).
        positional: on the command line the first input is ``IN`` and the main output ``OUT`` (positional);
            False: every input is an option and the output is ``--output/-o``.
        out_dir: on the command line ``OUT`` is the stage folder itself (every output inside it, as in a
            recipe), not the main output file.
        spec_options: the command has every model spec option per role (backend, base URL...); False: only
            ``--model`` (trainers load the model themselves, with their own dtype, device and template settings).
    """

    name: str
    doc: str
    settings: type
    run: Adapter
    inputs: tuple[Port, ...] = ()
    models: tuple[Port, ...] = ()
    outputs: tuple[Output, ...] = ()
    primary: str | None = None
    free_models: bool = False
    provided: dict[str, Any] = field(default_factory=dict)
    version: int = 1
    torch: bool = False
    check: Check | None = None
    positional: bool = True
    out_dir: bool = False
    spec_options: bool = True

    def port(self, name: str) -> Port | None:
        return next((p for p in self.inputs if p.name == name), None)

    def role(self, name: str) -> Port | None:
        return next((p for p in self.models if p.name == name), None)

    def output(self, name: str) -> Output:
        found = next((o for o in self.outputs if o.name == name), None)
        if found is None:
            raise KeyError(f"stage kind {self.name} has no output {name!r}")
        return found

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)
