"""A stage's command, generated from its declaration: options → settings → adapter → summary, nothing more.

    app.command("capo")(stage_command("capo"))

The options come from the stage (:class:`~turnwise.stage.spec.Stage`):

- its inputs: ``IN`` (the first, positional) and ``--<input>`` for the others; its main output ``OUT``
  (or ``--output/-o`` for stages whose inputs are all options);
- every leaf of its settings class, documented by the class's ``Attributes:`` (what a recipe's ``settings:``
  accepts, the same keys, the same types, the same defaults);
- per model role every :class:`~turnwise.models.base.ModelSpec` field: the primary role's as ``--model``,
  ``--backend``, ``--base-url``..., another role's as ``--<role>-model``, ``--<role>-backend``...; an option
  without a role prefix is also the default of every role that shares them (``Port.shared``; a judge does not);
- ``--config FILE`` (a YAML mapping shaped like a recipe stage's ``settings:``), ``--set key=value``
  (repeatable, ``--set user_settings.temperature=0.5``), ``--cache``, ``--no-cache``, ``--retry-failed``.

Precedence, lowest first: the settings class's defaults, ``--config``, ``--set``, the options.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.markup import escape
from typer.core import TyperGroup

from turnwise.cli.run_stage import Param, run_command
from turnwise.config import field_docs, type_name
from turnwise.models.base import ModelSpec
from turnwise.stage.settings import Setting, flat_settings
from turnwise.stage.spec import Stage
from turnwise.stage.table import load_stage

RUN_OPTIONS = ("config", "set", "cache", "no_cache", "retry_failed")
# ModelSpec fields whose option is not simply the field's name.
SPEC_FLAGS = {"base_urls": "base-url", "timeout_s": "timeout", "backoff_s": "backoff"}
_RUN_PANEL = "Run"


class RunByDefault(TyperGroup):
    """A group whose first argument, when it names no subcommand, goes to ``run`` (``turnwise detect IN OUT``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


def stage_command(name: str) -> Callable[..., None]:
    """The typer command of stage kind ``name`` (see the module docstring)."""
    stage = load_stage(name)
    params = command_params(stage)
    signature = inspect.Signature([p for p, _ in params.values()])

    def command(**values: Any) -> None:
        # the stage as the table has it now (the very object a recipe would run)
        run_command(load_stage(name), {key: (info, values[key]) for key, (_, info) in params.items()})

    command.__signature__ = signature  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
    command.__doc__ = stage.doc
    command.__name__ = name
    return command


def command_params(stage: Stage, *, files: bool = True) -> dict[str, tuple[inspect.Parameter, Param]]:
    """Every parameter of a stage's command, keyed by its Python name (without its inputs and output when not
    ``files``: a command that reads and writes otherwise, such as an interactive chat)."""
    out: dict[str, tuple[inspect.Parameter, Param]] = {}
    for parameter, info in [*(_inputs(stage) if files else []), *_settings(stage), *_models(stage), *_run_options()]:
        if parameter.name in out:
            raise ValueError(f"stage {stage.name}: two options are named {parameter.name}")
        out[parameter.name] = (parameter, info)
    flags = [info.flag for _, info in out.values() if info.flag.startswith("-")]
    if len(flags) != len(set(flags)):
        raise ValueError(f"stage {stage.name}: an option is generated twice: {sorted(flags)}")
    return out


def _param(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _inputs(stage: Stage) -> list[tuple[inspect.Parameter, Param]]:
    out = []
    for i, port in enumerate(stage.inputs):
        name = f"in_{port.name}"
        if i == 0 and stage.positional:
            annotation = Annotated[Path, typer.Argument(metavar="IN", help=escape(port.doc), show_default=False)]
            out.append((_param(name, annotation, inspect.Parameter.empty), Param("input", port.name, "IN")))
            continue
        kind: Any = list[Path] if port.many else Path
        doc = escape(port.doc) + (" (repeatable)" if port.many else "")
        annotation = Annotated[kind | None, typer.Option(port.option, help=doc, show_default=False)]
        out.append((_param(name, annotation), Param("input", port.name, port.option)))
    main = stage.outputs[0]
    doc = escape(main.doc or main.name) + "; re-running resumes it"
    if stage.positional:
        annotation = Annotated[Path, typer.Argument(metavar="OUT", help=doc, show_default=False)]
        out.append((_param("out", annotation, inspect.Parameter.empty), Param("output", main.name, "OUT")))
    else:
        annotation = Annotated[Path | None, typer.Option("--output", "-o", help=doc, show_default=False)]
        out.append((_param("out", annotation), Param("output", main.name, "--output")))
    return out


def _settings(stage: Stage) -> list[tuple[inspect.Parameter, Param]]:
    out = []
    for setting in flat_settings(stage.settings, tuple(stage.provided)):
        kind, decls = _option_type(setting)
        default = "" if setting.default is dataclasses.MISSING else f" [default: {_shown(setting.default)}]"
        option = typer.Option(*decls, help=helptext(setting.doc + default), show_default=False,
                              metavar=_metavar(setting.annotation), rich_help_panel="Settings")
        name = "s_" + "__".join(setting.key)
        out.append((_param(name, Annotated[kind, option]), Param("setting", setting.dotted, setting.flag, setting)))
    return out


def _option_type(setting: Setting) -> tuple[Any, tuple[str, ...]]:
    annotation = setting.annotation
    if annotation is bool:
        return bool | None, (f"{setting.flag}/--no-{setting.flag[2:]}",)
    if typing.get_origin(annotation) in (list, tuple, Sequence):
        return list[str] | None, (setting.flag,)
    return str | None, (setting.flag,)


def _metavar(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "|".join(map(str, typing.get_args(annotation)))
    if origin in (list, tuple, Sequence):
        return f"{_metavar(typing.get_args(annotation)[0])},..."
    return type_name(annotation).upper().replace(" ", "")


def helptext(doc: str) -> str:
    """A field's documentation as ``--help`` shows it: reST quotes dropped, a capital first letter, markup escaped."""
    doc = doc.replace("``", "")
    return escape(doc[:1].upper() + doc[1:])


def _shown(value: Any) -> str:
    if dataclasses.is_dataclass(value):
        return type(value).__name__
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


def _models(stage: Stage) -> list[tuple[inspect.Parameter, Param]]:
    """``--model`` and the spec options of the primary role (and every role's defaults), then each other role's."""
    docs, out = field_docs(ModelSpec), []
    fields = [f for f in dataclasses.fields(ModelSpec)]
    others = [p for p in stage.models if p.name != stage.primary]
    unprefixed = bool(stage.primary or stage.free_models or any(p.shared for p in others))
    roles = [None] * unprefixed + [p.name for p in others]
    for role in roles:
        port = stage.role(role or stage.primary or "") if role or stage.primary else None
        panel = f"Model: {role or stage.primary or 'every role'}"
        for f in fields:
            if f.name != "model" and not stage.spec_options:
                continue
            if f.name == "model" and role is None and stage.primary is None and not stage.free_models:
                continue  # no unprefixed --model without a primary role
            flag = "--" + ("" if role is None else role.replace("_", "-") + "-") + SPEC_FLAGS.get(
                f.name, f.name.replace("_", "-"))
            doc = docs[f.name] if f.name != "model" else _model_doc(stage, port)
            if role is not None and f.name != "model" and stage.role(role).shared:
                doc = f"{doc} (default: the unprefixed option's)"
            kind, decls = _spec_option(f, flag, role is None)
            option = typer.Option(*decls, help=helptext(doc), show_default=False, rich_help_panel=panel)
            name = f"m_{role or ''}__{f.name}"
            out.append((_param(name, Annotated[kind, option]), Param("model", f.name, flag, role=role, field=f.name)))
    return out


def _model_doc(stage: Stage, port: Any) -> str:
    if stage.free_models and port is None:
        return "A model to evaluate, LABEL=MODEL or MODEL (repeatable); hub id, folder or served name."
    what = port.doc if port is not None else "the model"
    return f"{what[:1].upper()}{what[1:]}: hub id or folder (local, vllm), or the served name (openai)."


def _spec_option(f: dataclasses.Field, flag: str, unprefixed: bool) -> tuple[Any, tuple[str, ...]]:
    if f.type in ("bool", bool):
        return bool | None, (f"{flag}/--no-{flag[2:]}",)
    if f.name == "base_urls":
        return list[str] | None, (flag,)
    if f.name == "model" and unprefixed:
        return list[str] | None, (flag, "-m")
    return str | None, (flag,)


def _run_options() -> list[tuple[inspect.Parameter, Param]]:
    specs = [
        ("config", Path | None, ("--config", "-c"), "YAML settings: a mapping shaped like a recipe stage's settings:."),
        ("set", list[str] | None, ("--set",), "Override a setting: --set key=value, nested keys with dots "
                                               "(repeatable)."),
        ("cache", Path | None, ("--cache",), "Response cache file (default: $TURNWISE_CACHE or ~/.cache/turnwise)."),
        ("no_cache", bool, ("--no-cache",), "Call the models even for requests answered before."),
        ("retry_failed", bool, ("--retry-failed",), "Try again the records that failed in an earlier run."),
    ]
    out = []
    for name, kind, decls, doc in specs:
        default = False if kind is bool else None
        option = typer.Option(*decls, help=doc, show_default=False, rich_help_panel=_RUN_PANEL)
        out.append((_param(f"r_{name}", Annotated[kind, option], default), Param("run", name, decls[0])))
    return out
