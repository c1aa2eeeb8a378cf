"""Run a stage from its command's option values: settings, models and inputs, the adapter, the summary.

The adapter is the very one a recipe runs (:mod:`turnwise.stage.table`); what differs is only where the
files go (``OUT`` and beside it, :meth:`~turnwise.stage.context.Layout.for_command`), the response cache
(``--cache``, default ``~/.cache/turnwise``) and that progress is a bar on stderr.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from turnwise.cli.options import progress_bar, stderr
from turnwise.config import parse_sets, read_yaml
from turnwise.errors import ConfigError
from turnwise.models.base import ModelSpec
from turnwise.stage.context import Layout, ResolvedModel, StageContext, StageResult
from turnwise.stage.settings import Setting, build_settings, coerce_value, merge, nest
from turnwise.stage.spec import Stage


@dataclasses.dataclass(frozen=True)
class Param:
    """One generated parameter: what it feeds (``input``, ``output``, ``setting``, ``model``, ``run``) and how."""

    kind: str
    name: str
    flag: str
    setting: Setting | None = None
    role: str | None = None
    field: str | None = None


def run_command(stage: Stage, values: dict[str, tuple[Param, Any]]) -> StageResult:
    """Options → settings → adapter → summary; see the module docstring."""
    run = {info.name: value for info, value in values.values() if info.kind == "run"}
    from_file = config_provided(stage, run["config"])
    given = [(info.setting, v) for info, v in values.values() if info.kind == "setting" and v is not None]
    settings = settings_from(stage, given, run["config"], run["set"] or [])
    models = resolve_models(stage, [(info, v) for info, v in values.values() if info.kind == "model"], from_file)
    inputs = _inputs(stage, {info.name: v for info, v in values.values() if info.kind == "input"}, from_file)
    out = next(v for info, v in values.values() if info.kind == "output") or from_file.get("output")
    if out is None:
        raise ConfigError("missing the output: give --output/-o")
    problems = stage.check(settings, {role: m.name for role, m in models.items()}) if stage.check else []
    if problems:
        raise ConfigError("; ".join(problems))
    if stage.spec_options:
        for model in models.values():
            model.spec.resolved_backend()  # a model no backend can serve is an error before anything starts
    ctx = StageContext(stage, stage.name, Layout.for_command(stage, Path(out)), settings, inputs, models,
                       {port: [str(p) for p in paths] for port, paths in inputs.items()}, _cache(run),
                       retry_failed=run["retry_failed"], say=lambda text: stderr.print(escape(text)))
    ctx.layout.dir.mkdir(parents=True, exist_ok=True)
    with progress_bar(stage.name, None) as progress:
        ctx.on_progress = lambda done, total: progress.update(progress.task_ids[0], completed=done, total=total)
        result = stage.run(ctx)
    print_summary(ctx, result)
    return result


def _cache(run: dict[str, Any]) -> Path | None:
    from turnwise.models.cache import default_cache_path

    return None if run["no_cache"] else (run["cache"] or default_cache_path())


def _inputs(stage: Stage, given: dict[str, Any], from_file: dict[str, Any]) -> dict[str, list[Path]]:
    inputs: dict[str, list[Path]] = {}
    for port in stage.inputs:
        value = given.get(port.name)
        if value is None and port.option == f"--{_key_of(port.option)}":
            value = from_file.get(_key_of(port.option))
        paths = [Path(v) for v in (value if isinstance(value, list) else [value] if value is not None else [])]
        for path in paths:
            if not path.exists():
                raise ConfigError(f"{port.option if port is not stage.inputs[0] or not stage.positional else 'IN'}: "
                                  f"{path} does not exist")
        if not paths and port.required:
            raise ConfigError(f"missing {port.option} ({port.doc})")
        if paths:
            inputs[port.name] = paths
    return inputs


def _key_of(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def resolve_models(stage: Stage, given: list[tuple[Param, Any]], from_file: dict[str, Any] | None = None
                   ) -> dict[str, ResolvedModel]:
    """Role → model from the ``--model``/``--<role>-*`` options; unprefixed options are every role's defaults."""
    shared = {info.field: v for info, v in given if info.role is None and v is not None and info.field != "model"}
    names = next((v for info, v in given if info.role is None and info.field == "model"), None) or []
    if not names and (from_file or {}).get("model"):
        names = [str(from_file["model"])]
    models: dict[str, ResolvedModel] = {}
    if stage.free_models:
        for item in names:
            label, sep, name = item.partition("=")
            label, name = (label, name) if sep else (Path(item).name or item, item)
            models[label] = _resolved(name, shared, f"--model {item}")
    elif names:
        if len(names) > 1:
            raise ConfigError(f"--model: one model for {stage.primary}, got {len(names)}")
        models[stage.primary or ""] = _resolved(names[0], shared, "--model")
    for port in stage.models:
        own = {info.field: v for info, v in given if info.role == port.name and v is not None}
        if "model" in own:
            defaults = shared if port.shared else {}
            models[port.name] = _resolved(own.pop("model"), {**defaults, **own}, f"--{port.name}-model")
        if port.required and port.name not in models:
            flag = "--model" if port.name == stage.primary else f"--{port.name.replace('_', '-')}-model"
            raise ConfigError(f"missing {flag} ({port.doc})")
    return models


def _resolved(name: str, fields: dict[str, Any], where: str) -> ResolvedModel:
    spec = build_settings(ModelSpec, {**fields, "model": name}, where)
    return ResolvedModel(name, spec)


def print_summary(ctx: StageContext, result: StageResult, *, top: int = 5) -> None:
    """Per record file ``OUT: failed 1, ok 9 (9 new)`` and its most common failure reasons; then the stage's line."""
    for run in ctx.runs:
        store = run.store
        counts = ", ".join(f"{k} {v}" for k, v in sorted(store.counts.items()))
        stderr.print(escape(f"{store.path}: {counts} ({store.written} new)"), soft_wrap=True)
        for reason, count in store.reasons.most_common(top):
            stderr.print(escape(f"  {count} × {reason}"), soft_wrap=True)
    if result.summary:
        stderr.print(escape(result.summary), soft_wrap=True)
    if "results" in ctx.stage.output_names and ctx.output("results").suffix == ".md":
        typer.echo(ctx.output("results").read_text(encoding="utf-8").rstrip())  # a stage's result table, on stdout


def settings_from(stage: Stage, given: list[tuple[Setting, Any]], config: Path | None, sets: list[str]) -> Any:
    """The stage's settings from ``--config``, ``--set`` and the options given (in that order of precedence).

    Raises:
        ConfigError: an unreadable file, an unknown key or a value of the wrong type, named by its source.
    """
    provided = dict(stage.provided)
    layers: list[dict[str, Any]] = []
    if config is not None:
        from_file = {k: v for k, v in read_yaml(config).items() if k not in provided}
        build_settings(stage.settings, from_file, str(config), provided=provided)
        layers.append(from_file)
    if sets:
        from_sets = nest({tuple(k.split(".")): v for k, v in parse_sets(sets).items()})
        build_settings(stage.settings, from_sets, "--set", provided=provided)
        layers.append(from_sets)
    options = {setting.key: coerce_value(_one(value, setting.annotation), setting.annotation, f"option {setting.flag}")
               for setting, value in given}
    layers.append(nest(options))
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = merge(merged, layer)
    return build_settings(stage.settings, merged, "settings", provided=provided)


def _one(value: Any, annotation: Any) -> Any:
    """A repeated option's values; one value with commas or a YAML list is read as the list it spells."""
    if isinstance(value, list) and len(value) == 1 and typing.get_origin(annotation) in (list, tuple, Sequence):
        return value[0]
    return value


def config_provided(stage: Stage, config: Path | None) -> dict[str, Any]:
    """The keys of a ``--config`` file that the command takes from its inputs, model and output instead
    (``data``, ``model``, ``output`` of a training config)."""
    if config is None or not stage.provided:
        return {}
    return {k: v for k, v in read_yaml(config).items() if k in stage.provided}
