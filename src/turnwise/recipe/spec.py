"""Read a recipe file into a validated :class:`Recipe`, or fail with every problem named by file and key.

    recipe = load_recipe("recipes/quickstart.yaml", fast=True, sets=["train_dpo.beta=0.2"])

A recipe is ``out_dir``, ``seed``, named ``models`` (a :class:`~turnwise.models.base.ModelSpec`, or
``{from_stage: NAME}`` plus spec fields for a model a training stage wrote) and an ordered list of
``stages``, each ``{name, kind, inputs, models, settings}``. An input is an earlier stage (``STAGE`` for its
main output, ``STAGE:OUTPUT`` for another one), a list of them where the kind takes several, or a file path.
``fast:`` holds per-stage settings applied by ``--fast`` (and may move ``out_dir``); ``--set`` takes
``STAGE.KEY=VALUE``, ``models.NAME.FIELD=VALUE``, ``seed=N`` and ``out_dir=PATH``. See docs/recipes.md.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turnwise.config import coerce, read_yaml
from turnwise.errors import ConfigError
from turnwise.models.base import ModelSpec
from turnwise.stage.settings import build_settings, merge, plain
from turnwise.stage.spec import Stage
from turnwise.stage.table import load_stages

TOP_KEYS = ("description", "out_dir", "seed", "torch_threads", "models", "stages", "fast")
STAGE_KEYS = ("name", "kind", "description", "inputs", "models", "settings")
FAST_KEYS = ("out_dir", "stages")
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Ref:
    """One input: an earlier stage's output, or a file."""

    stage: str | None = None
    output: str | None = None
    file: str | None = None

    @property
    def label(self) -> str:
        return f"{self.stage}:{self.output}" if self.stage else str(self.file)


@dataclass
class ModelRef:
    """A named model: spec fields, and the stage that trains it (None for a model that exists already)."""

    name: str
    fields: dict[str, Any]
    from_stage: str | None = None


@dataclass
class StageSpec:
    """A validated stage: its inputs and model roles resolved to names, its settings built."""

    index: int
    name: str
    kind: str
    inputs: dict[str, list[Ref]]
    models: dict[str, str]
    settings: Any
    description: str = ""

    @property
    def where(self) -> str:
        return f"stages[{self.index}] {self.name}"


@dataclass
class Recipe:
    """A validated recipe; see the module docstring."""

    path: Path
    out_dir: Path
    seed: int
    models: dict[str, ModelRef]
    stages: list[StageSpec]
    torch_threads: int | None = None
    description: str = ""
    fast: bool = False
    raw: dict[str, Any] = field(default_factory=dict)

    def stage(self, name: str) -> StageSpec:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise ConfigError(f"{self.path}: no stage named {name!r}; stages: {', '.join(s.name for s in self.stages)}")


class _Problems:
    """Problems found while validating, reported together as one error."""

    def __init__(self, path: Path):
        self.path, self.items = path, []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{self.path}: {where}: {message}" if where else f"{self.path}: {message}")

    def raise_any(self) -> None:
        if self.items:
            raise ConfigError("\n".join(self.items))


def load_recipe(path: str | Path, *, fast: bool = False, sets: Iterable[str] = ()) -> Recipe:
    """Read, merge (``fast:`` with ``fast``, then ``sets``) and validate a recipe; nothing runs.

    Raises:
        ConfigError: one line per problem, each naming the file and the key.
    """
    path = Path(path)
    data = read_yaml(path)
    problems = _Problems(path)
    _unknown_keys(data, TOP_KEYS, "", problems)
    stages_raw = data.get("stages")
    if not isinstance(stages_raw, list) or not stages_raw or not all(isinstance(s, Mapping) for s in stages_raw):
        problems.add("stages", "expected a non-empty list of stages, each a mapping with name and kind")
        problems.raise_any()
    data = copy.deepcopy(data)
    before = len(problems.items)
    _check_fast(data.get("fast"), data["stages"], problems)
    if fast and len(problems.items) == before:
        _apply_fast(data)
    for item in sets:
        _apply_set(data, item, path)
    recipe = _build(data, path, problems)
    recipe.fast = fast
    problems.raise_any()
    return recipe


def _build(data: dict[str, Any], path: Path, problems: _Problems) -> Recipe:
    seed = _top(data, "seed", int, 0, problems)
    out_dir = _top(data, "out_dir", str, f"runs/{path.stem}", problems)
    threads = _top(data, "torch_threads", int | None, None, problems)
    models = _parse_models(data.get("models") or {}, problems)
    # A recipe's seed: is every stage's seed setting (unless the stage sets its own); without one, each stage keeps
    # its own default, the one its command has.
    stages = _parse_stages(data["stages"], models, seed if data.get("seed") is not None else None, problems)
    names = [s.get("name") for s in data["stages"]]
    for ref in models.values():
        if ref.from_stage is not None and ref.from_stage not in names:
            problems.add(f"models.{ref.name}", f"from_stage {ref.from_stage!r} is not a stage of this recipe")
    return Recipe(path, Path(out_dir), seed, models, stages, threads, str(data.get("description") or ""), raw=data)


def _top(data: dict[str, Any], key: str, annotation: Any, default: Any, problems: _Problems) -> Any:
    if data.get(key) is None:
        return default
    try:
        return coerce(data[key], annotation)
    except ValueError as exc:
        problems.add(key, str(exc))
        return default


def _unknown_keys(data: Mapping[str, Any], allowed: tuple[str, ...], where: str, problems: _Problems) -> None:
    for key in data:
        if key not in allowed:
            problems.add(where, f"unknown key {key!r}; valid keys: {', '.join(allowed)}")


def _check_fast(block: Any, stages: list[Mapping[str, Any]], problems: _Problems) -> None:
    if block is None:
        return
    if not isinstance(block, Mapping):
        problems.add("fast", "expected a mapping with out_dir and/or stages")
        return
    _unknown_keys(block, FAST_KEYS, "fast", problems)
    names = [s.get("name") for s in stages]
    for name, values in (block.get("stages") or {}).items():
        if name not in names:
            problems.add(f"fast.stages.{name}", f"no stage named {name!r}")
        elif not isinstance(values, Mapping):
            problems.add(f"fast.stages.{name}", "expected a mapping of setting: value")


def _apply_fast(data: dict[str, Any]) -> None:
    block = data.get("fast") or {}
    if block.get("out_dir"):
        data["out_dir"] = block["out_dir"]
    for stage in data["stages"]:
        over = (block.get("stages") or {}).get(stage.get("name"))
        if over:
            stage["settings"] = merge(dict(stage.get("settings") or {}), over)


def _apply_set(data: dict[str, Any], item: str, path: Path) -> None:
    key, sep, value = item.partition("=")
    parts = [p.strip() for p in key.split(".")]
    if not sep or not all(parts):
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE (seed=1, STAGE.SETTING=VALUE, models.NAME.FIELD=VALUE)")
    if len(parts) == 1 and parts[0] in ("seed", "out_dir", "torch_threads"):
        data[parts[0]] = value
        return
    if parts[0] == "models" and len(parts) >= 3:
        if parts[1] not in (data.get("models") or {}):
            raise ConfigError(f"--set {item!r}: {path} has no model named {parts[1]!r}")
        _set_nested(data["models"][parts[1]], parts[2:], value)
        return
    stage = next((s for s in data["stages"] if s.get("name") == parts[0]), None)
    if stage is None or len(parts) < 2:
        names = ", ".join(str(s.get("name")) for s in data["stages"])
        raise ConfigError(f"--set {item!r}: {path} has no stage named {parts[0]!r} (stages: {names})")
    stage["settings"] = dict(stage.get("settings") or {})
    _set_nested(stage["settings"], parts[1:], value)


def _set_nested(target: dict[str, Any], parts: list[str], value: str) -> None:
    for part in parts[:-1]:
        target[part] = dict(target.get(part) or {})
        target = target[part]
    target[parts[-1]] = value


def _parse_models(raw: Any, problems: _Problems) -> dict[str, ModelRef]:
    if not isinstance(raw, Mapping):
        problems.add("models", "expected a mapping of name: model spec")
        return {}
    models = {}
    for name, spec in raw.items():
        where = f"models.{name}"
        if not isinstance(spec, Mapping):
            problems.add(where, "expected a model spec (model: ..., backend: ...) or {from_stage: STAGE}")
            continue
        from_stage = spec.get("from_stage")
        fields = {k: v for k, v in spec.items() if k != "from_stage"}
        if from_stage is None and "model" not in fields:
            problems.add(where, "needs model: (a hub id, a folder, or a served name) or from_stage: STAGE")
            continue
        if from_stage is not None and "model" in fields:
            problems.add(where, "give model: or from_stage:, not both (a trained model's folder comes from its stage)")
            continue
        try:
            built = build_settings(ModelSpec, fields, where, provided={"model": "<from stage>"} if from_stage else None)
        except ConfigError as exc:
            problems.items.append(f"{problems.path}: {exc}")
            continue
        kept = {k: v for k, v in plain(built).items() if k != "model" or from_stage is None}
        models[str(name)] = ModelRef(str(name), kept, str(from_stage) if from_stage is not None else None)
    return models


def _parse_stages(raw: list[Mapping[str, Any]], models: dict[str, ModelRef], seed: int | None,
                  problems: _Problems) -> list[StageSpec]:
    registry, stages, earlier = load_stages(), [], {}
    all_names = [s.get("name") for s in raw]
    for index, data in enumerate(raw):
        where = f"stages[{index}]" + (f" {data['name']}" if isinstance(data.get("name"), str) else "")
        _unknown_keys(data, STAGE_KEYS, where, problems)
        name, kind = data.get("name"), registry.get(str(data.get("kind")))
        if not isinstance(name, str) or not NAME.match(name):
            problems.add(where, "name: a letter, then letters, digits, _ or - (it names the output folder)")
            continue
        if name in earlier:
            problems.add(where, f"name {name!r} is used by an earlier stage")
            continue
        if kind is None:
            problems.add(where, f"kind: unknown kind {data.get('kind')!r}; kinds: {', '.join(sorted(registry))}")
            continue
        stage = StageSpec(index, name, kind.name, {}, {}, None, str(data.get("description") or ""))
        stage.inputs = _parse_inputs(data.get("inputs") or {}, kind, earlier, all_names, where, problems)
        stage.models = _parse_roles(data.get("models") or {}, kind, models, earlier, where, problems)
        stage.settings = _parse_settings(data.get("settings") or {}, kind, seed, where, problems)
        if stage.settings is not None and kind.check is not None:
            for message in kind.check(stage.settings, stage.models):
                problems.add(where, message)
        earlier[name] = kind
        stages.append(stage)
    return stages


def _parse_inputs(raw: Any, kind: Stage, earlier: dict[str, Stage], all_names: list[Any], where: str,
                  problems: _Problems) -> dict[str, list[Ref]]:
    if not isinstance(raw, Mapping):
        problems.add(f"{where}: inputs", "expected a mapping of input: stage or file")
        return {}
    inputs: dict[str, list[Ref]] = {}
    for name, value in raw.items():
        port = kind.port(str(name))
        if port is None:
            valid = ", ".join(p.name for p in kind.inputs) or "none"
            problems.add(f"{where}: inputs", f"unknown input {name!r} for kind {kind.name}; inputs: {valid}")
            continue
        values = value if isinstance(value, list) else [value]
        if len(values) != 1 and not port.many:
            problems.add(f"{where}: inputs.{name}", "takes one stage or file, not a list")
            continue
        refs = [_ref(v, earlier, all_names, f"{where}: inputs.{name}", problems) for v in values]
        inputs[str(name)] = [r for r in refs if r is not None]
    for port in kind.inputs:
        if port.name not in inputs and port.name == "stages" and not port.required:
            inputs[port.name] = [Ref(s, earlier[s].output_names[0]) for s in earlier if earlier[s].outputs]
        elif port.name not in inputs and port.required:
            problems.add(f"{where}: inputs", f"missing input {port.name!r} ({port.doc})")
    return inputs


def _ref(value: Any, earlier: dict[str, Stage], all_names: list[Any], where: str, problems: _Problems) -> Ref | None:
    if isinstance(value, Mapping) and set(value) == {"file"}:
        return Ref(file=str(value["file"]))
    if not isinstance(value, str) or not value:
        problems.add(where, f"expected a stage name, STAGE:OUTPUT or a file path, got {value!r}")
        return None
    stage, sep, output = value.partition(":")
    if stage in earlier:
        kind = earlier[stage]
        output = output if sep else kind.output_names[0]
        if output not in kind.output_names:
            problems.add(where, f"stage {stage} ({kind.name}) has no output {output!r}; outputs: "
                         f"{', '.join(kind.output_names)}")
            return None
        return Ref(stage, output)
    if stage in all_names:
        problems.add(where, f"stage {stage!r} comes later in the recipe; a stage reads only earlier stages")
        return None
    return Ref(file=value)


def _parse_roles(raw: Any, kind: Stage, models: dict[str, ModelRef], earlier: dict[str, Stage], where: str,
                 problems: _Problems) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        problems.add(f"{where}: models", "expected a mapping of role: model name")
        return {}
    roles: dict[str, str] = {}
    for role, name in raw.items():
        key = f"{where}: models.{role}"
        if kind.role(str(role)) is None and not kind.free_models:
            valid = ", ".join(p.name for p in kind.models) or "none"
            problems.add(key, f"unknown model role {role!r} for kind {kind.name}; roles: {valid}")
        elif name not in models:
            problems.add(key, f"no model named {name!r} under models: ({', '.join(models) or 'none'})")
        elif (source := models[name].from_stage) is not None and source not in earlier:
            problems.add(key, f"model {name!r} comes from stage {source!r}, which must be an earlier stage")
        elif source is not None and "model" not in earlier[source].output_names:
            problems.add(key, f"model {name!r} comes from stage {source!r} ({earlier[source].name}), "
                         "which writes no model")
        else:
            roles[str(role)] = str(name)
    for port in kind.models:
        if port.required and port.name not in roles and port.name not in raw:
            problems.add(f"{where}: models", f"missing model role {port.name!r} ({port.doc})")
    return roles


def _parse_settings(raw: Any, kind: Stage, seed: int | None, where: str, problems: _Problems) -> Any:
    from turnwise.config import field_types

    if seed is not None and isinstance(raw, Mapping) and "seed" in field_types(kind.settings) and "seed" not in raw:
        raw = {**raw, "seed": seed}  # the recipe's seed, unless the stage sets its own
    try:
        return build_settings(kind.settings, raw, f"{where}: settings", provided=kind.provided)
    except ConfigError as exc:
        problems.items.append(f"{problems.path}: {exc}")
        return None
