"""A stage's ``settings:`` mapping → its settings dataclass, and back to plain data for hashing.

    cfg = build_settings(SimulateSettings, {"turns": 4, "user_settings": {"max_tokens": 16}}, "stages[4].settings")
    plain_settings(cfg)      # {"turns": 4, ..., "user_settings": {"temperature": 1.0, ...}}

The scalar rules are :func:`turnwise.config.coerce`'s (``"1e-4"`` → float, ``"yes"`` → bool, ``[a, b]`` →
list...); on top of them a field typed as a dataclass (``GenerationSettings``, ``JudgeConfig``...) takes a
nested mapping, built the same way, and ``Mapping[str, X]`` is read as ``dict[str, X]``. Every error names
where the key sits (``stages[4] (simulate): settings.user_settings: unknown key 'max_token'``).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from turnwise.config import coerce, field_types
from turnwise.errors import ConfigError

__all__ = ["Setting", "build_settings", "coerce_value", "flat_settings", "merge", "nest", "plain", "plain_settings",
           "setting_names"]


def setting_names(cls: type, provided: tuple[str, ...] = ()) -> list[str]:
    """The keys a recipe may set: every public ``__init__`` field of ``cls`` but the ones the runner provides."""
    return [name for name in _public(cls) if name not in provided]


def _public(cls: type) -> dict[str, Any]:
    """Annotations of the fields a caller sets (not ``init=False`` ones, nor private ``_x`` state)."""
    types_ = field_types(cls)
    return {f.name: types_[f.name] for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")}


def build_settings(cls: type, values: Mapping[str, Any], where: str, *, provided: Mapping[str, Any] | None = None
                   ) -> Any:
    """Build ``cls`` from a recipe's mapping, the runner's ``provided`` fields on top.

    Args:
        cls: the settings dataclass.
        values: the recipe's ``settings:`` (already merged with ``fast:`` and ``--set``).
        where: where the mapping sits, for messages (``stages[3] (train_dpo): settings``).
        provided: fields the runner fills in (a training stage's ``data``, ``model``, ``output``); a recipe
            that sets one of them gets an error.

    Raises:
        ConfigError: an unknown key, a value of the wrong type, or a value the dataclass refuses.
    """
    provided = dict(provided or {})
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping of setting: value, got {type(values).__name__}")
    types_ = _public(cls)
    allowed = [name for name in types_ if name not in provided]
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in allowed:
            raise ConfigError(f"{where}: {_unknown(str(key), allowed, provided)}")
        kwargs[key] = coerce_value(_over_default(cls, key, value), types_[key], f"{where}.{key}")
    try:
        return cls(**kwargs, **provided)
    except (TypeError, ValueError, ConfigError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _over_default(cls: type, key: str, value: Any) -> Any:
    """A nested mapping on top of the field's own default (``settings: {max_tokens: 16}`` keeps the other sampling
    settings the class documents for that field, not the nested class's bare defaults)."""
    if not isinstance(value, Mapping):
        return value
    field = next(f for f in dataclasses.fields(cls) if f.name == key)
    default = field.default if field.default is not dataclasses.MISSING else (
        field.default_factory() if field.default_factory is not dataclasses.MISSING else None)
    if dataclasses.is_dataclass(default) and not isinstance(default, type):
        return merge(plain(default), value)
    return value


def _unknown(key: str, allowed: list[str], provided: Mapping[str, Any]) -> str:
    if key in provided:
        return f"key {key!r} is set by the runner from the stage's inputs and models, not in settings"
    hint = difflib.get_close_matches(key, allowed, n=1)
    guess = f" (did you mean {hint[0]!r}?)" if hint else ""
    return f"unknown key {key!r}{guess}; valid keys: {', '.join(allowed)}"


def coerce_value(value: Any, annotation: Any, where: str) -> Any:
    """``value`` read as ``annotation`` (a nested dataclass from a mapping); errors name ``where``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if dataclasses.is_dataclass(annotation):
        return build_settings(annotation, value if value is not None else {}, where)
    if origin in (typing.Union, types.UnionType) and any(dataclasses.is_dataclass(a) for a in args):
        if value is None:
            return None
        arm = next(a for a in args if dataclasses.is_dataclass(a))
        return build_settings(arm, value, where)
    if origin is Mapping or origin is typing.Mapping:
        annotation = dict[args] if args else dict
    try:
        return coerce(value, annotation)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def plain(value: Any) -> Any:
    """Settings as JSON-safe data: dataclasses as mappings, tuples as lists, paths as strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: plain(getattr(value, name)) for name in _public(type(value))}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def plain_settings(cfg: Any, provided: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every setting of ``cfg`` (defaults included) as plain data, the runner-provided fields left out."""
    return {k: v for k, v in plain(cfg).items() if k not in provided}


@dataclasses.dataclass(frozen=True)
class Setting:
    """One leaf of a settings class, as the command line shows it.

    Attributes:
        key: its path in a recipe's ``settings:`` mapping (``("user_settings", "temperature")``).
        annotation: its type.
        default: its default value.
        doc: its documentation (the class's ``Attributes:`` entry).
        flag: its option (``--user-temperature``).
    """

    key: tuple[str, ...]
    annotation: Any
    default: Any
    doc: str
    flag: str

    @property
    def dotted(self) -> str:
        return ".".join(self.key)


def flat_settings(cls: type, provided: tuple[str, ...] = ()) -> list[Setting]:
    """Every leaf setting of ``cls``, nested dataclasses opened up, each with its command-line option.

    A field's option is ``--<name>`` unless its metadata says otherwise: ``field(metadata={"cli": "--from"})``
    for a leaf; for a nested dataclass, ``{"cli": "user-"}`` puts ``user-`` before its fields' names and
    ``{"cli": ""}`` nothing (the default is the field's name and a dot: ``--judge.settings.max-tokens``), and
    ``{"cli_rename": {"seed": "--sampling-seed"}}`` gives single leaves of it an option of their own (where the
    plain name is taken by the outer class).

    Raises:
        ValueError: two settings would share an option.
    """
    found = _flat(cls, (), "--", provided)
    seen: dict[str, str] = {}
    for s in found:
        if s.flag in seen:
            raise ValueError(f"{cls.__name__}: settings {seen[s.flag]} and {s.dotted} would share {s.flag}")
        seen[s.flag] = s.dotted
    return found


def _flat(cls: type, key: tuple[str, ...], flag: str, provided: tuple[str, ...], instance: Any = None,
          renames: Mapping[str, str] | None = None) -> list[Setting]:
    from turnwise.config import field_docs

    docs, types_, out = field_docs(cls), _public(cls), []
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, annotation in types_.items():
        if name in provided:
            continue
        meta, default = fields[name].metadata.get("cli"), _default(fields[name], instance)
        nested = _dataclass_arm(annotation)
        if nested is not None:
            prefix = name.replace("_", "-") + "." if meta is None else meta
            out += _flat(nested, (*key, name), flag + prefix, (), default if default is not None else nested(),
                         fields[name].metadata.get("cli_rename"))
        else:
            own = (renames or {}).get(name) or meta
            out.append(Setting((*key, name), annotation, default, docs.get(name, ""),
                               own or flag + name.replace("_", "-")))
    return out


def _default(f: dataclasses.Field, instance: Any) -> Any:
    if instance is not None:
        return getattr(instance, f.name)
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _dataclass_arm(annotation: Any) -> type | None:
    if dataclasses.is_dataclass(annotation):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next((a for a in typing.get_args(annotation) if dataclasses.is_dataclass(a)), None)
    return None


def nest(flat: Mapping[tuple[str, ...], Any]) -> dict[str, Any]:
    """``{("a", "b"): 1}`` → ``{"a": {"b": 1}}``: leaf values into a ``settings:``-shaped mapping."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        target = out
        for part in key[:-1]:
            target = target.setdefault(part, {})
        target[key[-1]] = value
    return out


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, mappings merged key by key."""
    out = dict(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(out.get(key), Mapping) and isinstance(value, Mapping) else value
    return out
