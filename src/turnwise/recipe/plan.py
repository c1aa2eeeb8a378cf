"""Each stage's key, folder and fate (cached, run, resume, forced, skipped) before anything runs.

A stage's key is the sha256 of its fingerprint: its kind and the adapter's version, its resolved settings
(defaults included), the keys of the stages it reads, the content hash of the files it reads, and the
identity of its models (name, backend, dtype, chat template, and the weights of a local folder; never a
URL or a key). A model a training stage wrote is identified by that stage's key. So a changed setting
changes its stage's key and, through the inputs and models, every key downstream of it, and nothing else.

A stage is complete when ``OUT/<name>-<key[:12]>/stage.json`` holds its key: written last, atomically.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turnwise.errors import ConfigError
from turnwise.models.embedded import gguf_path, is_embedded
from turnwise.recipe.hashing import ContentHasher, digest
from turnwise.recipe.spec import Recipe, StageSpec
from turnwise.stage.settings import plain_settings
from turnwise.stage.spec import Stage
from turnwise.stage.table import load_stages

log = logging.getLogger(__name__)

STAGE_FILE = "stage.json"
# The fields of a model spec that change what it answers. URLs, keys, concurrency and timeouts do not.
IDENTITY_FIELDS = ("model", "backend", "dtype", "chat_template", "trust_remote_code", "options")
ACTIONS = ("cached", "run", "resume", "forced", "skipped")


@dataclass
class PlannedStage:
    """One stage of a plan.

    Attributes:
        spec: the stage as the recipe gives it.
        kind: its kind.
        key: its content address.
        fingerprint: what the key hashes.
        dir: its folder.
        action: ``cached`` (complete: nothing to do), ``run`` (no output yet), ``resume`` (an earlier run
            stopped part-way: its records are kept), ``forced`` (``--from``/``--only``: the folder is
            cleared and the stage runs again, the response cache still answering what it can), ``skipped``
            (``--only`` another stage).
        reason: why, in words.
    """

    spec: StageSpec
    kind: Stage
    key: str
    fingerprint: dict[str, Any]
    dir: Path
    action: str = "run"
    reason: str = ""

    @property
    def name(self) -> str:
        return self.spec.name

    def complete(self) -> bool:
        return stage_record(self.dir, self.key) is not None


@dataclass
class Plan:
    """The stages of a recipe, in order, with their keys and actions."""

    recipe: Recipe
    stages: list[PlannedStage] = field(default_factory=list)
    hasher: ContentHasher = field(default_factory=ContentHasher)

    def get(self, name: str) -> PlannedStage:
        return next(s for s in self.stages if s.name == name)


def stage_record(folder: Path, key: str | None = None) -> dict[str, Any] | None:
    """The ``stage.json`` of a folder (None when missing, unreadable, or for another key)."""
    try:
        record = json.loads((folder / STAGE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if key is None or record.get("key") == key else None


def stage_dir(out_dir: Path, name: str, key: str) -> Path:
    return out_dir / f"{name}-{key[:12]}"


def make_plan(recipe: Recipe, *, from_stage: str | None = None, only: str | None = None,
              hasher: ContentHasher | None = None) -> Plan:
    """Key every stage and decide what to do with it.

    Args:
        recipe: a validated recipe.
        from_stage: run this stage and every later one again, even where complete.
        only: run only this stage (again, even where complete); its inputs must be complete.

    Raises:
        ConfigError: an unknown stage name, a file input that does not exist, or ``--only`` a stage whose
            inputs are not complete.
    """
    for name in (from_stage, only):
        if name is not None:
            recipe.stage(name)
    plan = Plan(recipe, hasher=hasher or ContentHasher(recipe.out_dir / "hashes.json"))
    registry = load_stages()
    keys: dict[str, str] = {}
    for spec in recipe.stages:
        fingerprint = _fingerprint(recipe, spec, registry[spec.kind], keys, plan.hasher)
        keys[spec.name] = digest(fingerprint)
        plan.stages.append(PlannedStage(spec, registry[spec.kind], keys[spec.name], fingerprint,
                                        stage_dir(recipe.out_dir, spec.name, keys[spec.name])))
    forced_from = next((i for i, s in enumerate(plan.stages) if s.name == from_stage), None)
    for i, stage in enumerate(plan.stages):
        stage.action, stage.reason = _decide(stage, i, forced_from, from_stage, only, recipe.out_dir)
    if only is not None:
        _check_only(plan, plan.get(only))
    return plan


def _fingerprint(recipe: Recipe, spec: StageSpec, kind: Stage, keys: dict[str, str],
                 hasher: ContentHasher) -> dict[str, Any]:
    inputs = {name: [_input_identity(recipe, spec, name, ref, keys, hasher) for ref in refs]
              for name, refs in sorted(spec.inputs.items())}
    models = {role: model_identity(recipe, name, keys, hasher) for role, name in sorted(spec.models.items())}
    fingerprint = {"kind": kind.name, "version": kind.version, "inputs": inputs, "models": models,
                   "settings": plain_settings(spec.settings, tuple(kind.provided))}
    templates = getattr(spec.settings, "template_dir", None)
    if templates:  # the prompts a stage renders are part of what it computes, not only the folder's name
        if not Path(templates).is_dir():
            raise ConfigError(f"{recipe.path}: {spec.where}: settings.template_dir: {templates} is not a folder")
        fingerprint["templates"] = hasher.path(templates)
    return fingerprint


def _input_identity(recipe: Recipe, spec: StageSpec, port: str, ref: Any, keys: dict[str, str],
                    hasher: ContentHasher) -> dict[str, Any]:
    if ref.stage is not None:
        return {"stage_key": keys[ref.stage], "output": ref.output}
    path = Path(ref.file)
    if not path.exists():
        raise ConfigError(f"{recipe.path}: {spec.where}: inputs.{port}: {ref.file} does not exist "
                          f"(relative paths are read from {Path.cwd()})")
    return {"sha256": hasher.path(path)}


def model_identity(recipe: Recipe, name: str, keys: dict[str, str], hasher: ContentHasher) -> dict[str, Any]:
    """What identifies a named model in keys: its defining fields, and its weights or its stage's key."""
    ref = recipe.models[name]
    identity = {k: ref.fields[k] for k in IDENTITY_FIELDS if k in ref.fields}
    if ref.from_stage is not None:
        identity["backend"] = "local" if identity.get("backend", "auto") == "auto" else identity["backend"]
        return {**identity, "stage_key": keys[ref.from_stage]}
    if Path(ref.fields["model"]).is_dir():
        identity["sha256"] = hasher.model(ref.fields["model"])
    elif is_embedded(ref.fields["model"]):  # a model a package carries: the file it converts from
        identity["sha256"] = hasher.file(gguf_path(ref.fields["model"]))
    return identity


def _decide(stage: PlannedStage, index: int, forced_from: int | None, from_stage: str | None, only: str | None,
            out_dir: Path) -> tuple[str, str]:
    if only is not None:
        return ("forced", "--only") if stage.name == only else ("skipped", f"--only {only}")
    if forced_from is not None and index >= forced_from:
        return "forced", f"--from {from_stage}"
    if stage.complete():
        return "cached", "complete, same key"
    if stage.dir.exists():
        return "resume", "an earlier run stopped part-way: finished records are kept"
    return "run", why_new(stage, out_dir)


_DIR = re.compile(r"^(?P<name>.+)-(?P<key>[0-9a-f]{12})$")


def previous_record(out_dir: Path, name: str, key: str) -> dict[str, Any] | None:
    """The latest complete run of stage ``name`` under another key (to say what changed), or None."""
    if not out_dir.is_dir():
        return None
    found = []
    for folder in out_dir.iterdir():
        match = _DIR.match(folder.name)
        if match and match["name"] == name and match["key"] != key[:12]:
            record = stage_record(folder)
            if record is not None:
                found.append(record)
    return max(found, key=lambda r: r.get("finished", ""), default=None)


def why_new(stage: PlannedStage, out_dir: Path) -> str:
    """What differs from the stage's latest complete run, or that it never ran."""
    previous = previous_record(out_dir, stage.name, stage.key)
    if previous is None or "fingerprint" not in previous:
        return "not run yet"
    return describe_changes(previous["fingerprint"], stage.fingerprint, stage.spec) or "key changed"


def describe_changes(old: dict[str, Any], new: dict[str, Any], spec: StageSpec) -> str:
    """``settings beta 0.1 → 0.2; input pairs changed`` from two fingerprints."""
    parts = []
    if old.get("kind") != new["kind"] or old.get("version") != new["version"]:
        parts.append("adapter version changed")
    for key, (a, b) in sorted(_flat_diff(old.get("settings", {}), new["settings"]).items()):
        parts.append(f"{key} {_short(a)} → {_short(b)}")
    for name in sorted(set(old.get("inputs", {})) | set(new["inputs"])):
        before, after = old.get("inputs", {}).get(name) or [], new["inputs"].get(name) or []
        if before != after:
            refs = spec.inputs.get(name, [])
            changed = [r.label for i, r in enumerate(refs) if len(before) != len(after) or before[i] != after[i]]
            parts.append(f"input {name} changed ({', '.join(changed)})" if changed else f"input {name} changed")
    for role in sorted(set(old.get("models", {})) | set(new["models"])):
        if old.get("models", {}).get(role) != new["models"].get(role):
            parts.append(f"model {role} changed ({spec.models.get(role, 'removed')})")
    return "; ".join(parts)


def _flat_diff(a: Any, b: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: dict[str, tuple[Any, Any]] = {}
        for key in set(a) | set(b):
            out.update(_flat_diff(a.get(key), b.get(key), f"{prefix}{key}."))
        return out
    return {} if a == b else {prefix.rstrip("."): (a, b)}


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_only(plan: Plan, stage: PlannedStage) -> None:
    upstream = {ref.stage for refs in stage.spec.inputs.values() for ref in refs if ref.stage}
    upstream |= {plan.recipe.models[m].from_stage for m in stage.spec.models.values()} - {None}
    missing = [s for s in sorted(upstream) if not plan.get(s).complete()]
    if missing:
        raise ConfigError(f"--only {stage.name}: its input stage(s) {', '.join(missing)} are not complete; "
                          "run the recipe (or --from one of them) first")
