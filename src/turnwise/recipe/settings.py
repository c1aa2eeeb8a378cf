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

__all__ = ["build_settings", "plain", "plain_settings", "setting_names"]


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
        kwargs[key] = _coerce(value, types_[key], f"{where}.{key}")
    try:
        return cls(**kwargs, **provided)
    except (TypeError, ValueError, ConfigError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _unknown(key: str, allowed: list[str], provided: Mapping[str, Any]) -> str:
    if key in provided:
        return f"key {key!r} is set by the runner from the stage's inputs and models, not in settings"
    hint = difflib.get_close_matches(key, allowed, n=1)
    guess = f" (did you mean {hint[0]!r}?)" if hint else ""
    return f"unknown key {key!r}{guess}; valid keys: {', '.join(allowed)}"


def _coerce(value: Any, annotation: Any, where: str) -> Any:
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
