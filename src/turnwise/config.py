"""Settings as dataclasses, loaded from a YAML file with command-line overrides on top.

    cfg = load_config(SFTTrainConfig, "recipes/train-sft.yaml", sets=["learning_rate=1e-4"],
                      overrides={"output": "runs/sft", "max_steps": None})

Precedence, lowest first: the dataclass defaults, the YAML file, ``--set key=value`` pairs, typed options
(``overrides``; a None value means "not given" and is ignored). Every value is coerced to its field's
annotation (``int``, ``float``, ``bool``, ``str``, ``X | None``, ``Literal[...]``, ``list[X]``,
``dict[str, X]``, also spelled ``a=1,b=2``), so ``lr: 1e-4`` (a string to PyYAML) and ``--set lora=yes`` both land
typed. Errors name
the source (the YAML file, ``--set`` or the option) and the key; an unknown key lists the valid ones.

A field's documentation is its entry in the dataclass's Google-style ``Attributes:`` section (merged over
the base classes), so ``--help`` and the docs show the same words as the code.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from turnwise.errors import ConfigError

T = TypeVar("T")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", "~", ""}


def field_types(cls: type) -> dict[str, Any]:
    """Each field's resolved annotation, in declaration order."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def field_docs(cls: type) -> dict[str, str]:
    """Each field's text from the ``Attributes:`` sections of the class and its bases (the class wins)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        docs.update(_parse_attributes(klass.__dict__.get("__doc__") or ""))
    return {name: docs.get(name, "") for name in field_types(cls)}


def _parse_attributes(doc: str) -> dict[str, str]:
    entries: dict[str, str] = {}
    lines = doc.expandtabs().splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "Attributes:"), None)
    if start is None:
        return entries
    header_indent = len(lines[start]) - len(lines[start].lstrip())
    entry_indent, name = None, None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent <= header_indent:
            break
        entry_indent = indent if entry_indent is None else entry_indent
        match = re.match(r"(\w+)\s*(?:\([^)]*\))?:\s*(.*)", line.strip())
        if indent == entry_indent and match:
            name = match.group(1)
            entries[name] = match.group(2)
        elif name is not None:
            entries[name] = f"{entries[name]} {line.strip()}".strip()
    return entries


def type_name(annotation: Any) -> str:
    """A short readable name for an annotation: ``int``, ``list[str]``, ``float | None``, ``one of a, b``."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(annotation)))
    if origin in (typing.Union, types.UnionType):
        return " | ".join("None" if a is type(None) else type_name(a) for a in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(type_name(a) for a in typing.get_args(annotation) if a is not Ellipsis)
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(annotation, "__name__", str(annotation))


def coerce(value: Any, annotation: Any) -> Any:
    """Convert ``value`` (from YAML or a command line) to ``annotation``.

    Raises:
        ValueError: the value cannot be read as that type; the message says what was expected.
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, args, annotation)
    if origin is typing.Literal:
        for choice in args:
            try:
                if coerce(value, type(choice)) == choice:
                    return choice
            except ValueError:
                continue
        raise ValueError(f"expected {type_name(annotation)}, got {value!r}")
    if origin in (list, tuple, Sequence):
        items = _as_list(value, annotation)
        return (tuple if origin is Sequence else origin)(coerce(item, args[0] if args else Any) for item in items)
    if origin is dict:
        return _coerce_dict(value, args, annotation)
    return _coerce_scalar(value, annotation)


def _coerce_union(value: Any, args: tuple, annotation: Any) -> Any:
    if type(None) in args and (value is None or (isinstance(value, str) and value.strip().lower() in _NONE
                                                  and not (value == "" and str in args))):
        return None  # but an explicit empty string stays one where a string is allowed (``--system ""``)
    for arm in (a for a in args if a is not type(None)):
        try:
            return coerce(value, arm)
        except ValueError:
            continue
    raise ValueError(f"expected {type_name(annotation)}, got {value!r}")


def _as_list(value: Any, annotation: Any) -> list:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            value = _yaml_value(text, annotation)
        else:
            return [part.strip() for part in text.split(",") if part.strip()]
    if not isinstance(value, list | tuple):
        raise ValueError(f"expected {type_name(annotation)} (a list, or comma-separated), got {value!r}")
    return list(value)


def _yaml_value(text: str, annotation: Any) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise ValueError(f"expected {type_name(annotation)}, got {text!r} (not valid YAML)") from None


def _coerce_dict(value: Any, args: tuple, annotation: Any) -> dict:
    if isinstance(value, str) and "=" in value and not value.strip().startswith("{"):
        value = _pairs(value, annotation)  # neglect=2,hallucination=1, as a command line spells a mapping
    elif isinstance(value, str):
        value = _yaml_value(value, annotation) if value.strip() else {}
    if not isinstance(value, dict):
        raise ValueError(f"expected {type_name(annotation)} (a mapping), got {value!r}")
    value_type = args[1] if len(args) == 2 else Any
    return {str(k): coerce(v, value_type) for k, v in value.items()}


def _pairs(text: str, annotation: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, item = part.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected {type_name(annotation)} as key=value,key=value, got {text!r}")
        out[key.strip()] = item.strip()  # typed by the mapping's value type; YAML ({a: 1}) for typed Any values
    return out


def _coerce_scalar(value: Any, annotation: Any) -> Any:
    wrong = ValueError(f"expected {type_name(annotation)}, got {value!r}")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE and not isinstance(value, float):
            return text in _TRUE
        raise wrong
    if annotation in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise wrong
        try:
            number = float(value) if annotation is float else _to_int(value)
        except ValueError:
            raise wrong from None
        return number
    if annotation in (str, Path):
        if not isinstance(value, str | Path):
            raise wrong
        return annotation(value)
    if isinstance(annotation, type) and isinstance(value, annotation):
        return value
    raise wrong


def _to_int(value: int | float | str) -> int:
    number = float(value) if isinstance(value, str) and not value.strip().lstrip("+-").isdigit() else value
    if isinstance(number, float) and not number.is_integer():
        raise ValueError(value)
    return int(number)


def parse_sets(sets: Iterable[str]) -> dict[str, str]:
    """``["lr=1e-4", "train_on=user,assistant"]`` → ``{"lr": "1e-4", "train_on": "user,assistant"}``."""
    pairs = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected key=value")
        pairs[key.strip().replace("-", "_")] = value
    return pairs


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML file's top-level mapping (an empty file is an empty mapping)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of key: value, got {type(data).__name__}")
    return data


def _apply(values: dict[str, Any], source: str, updates: Mapping[str, Any], types_: dict[str, Any]) -> None:
    for key, value in updates.items():
        if key not in types_:
            hint = difflib.get_close_matches(key, list(types_), n=1)
            guess = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(f"{source}: unknown key {key!r}{guess}; valid keys: {', '.join(types_)}")
        try:
            values[key] = coerce(value, types_[key])
        except ValueError as exc:
            raise ConfigError(f"{source}: key {key!r}: {exc}") from None


def load_config(
    cls: type[T],
    path: str | Path | None = None,
    *,
    sets: Iterable[str] = (),
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """Build ``cls`` from its defaults, a YAML file, ``key=value`` strings and typed overrides, in that order.

    Args:
        cls: a dataclass.
        path: a YAML mapping of field names to values, or None.
        sets: ``key=value`` strings (``--set``); values are read as the field's type.
        overrides: typed values (command-line options); None values are left out.

    Raises:
        ConfigError: an unreadable file, an unknown key, a value of the wrong type, a required field left
            unset, or a value the dataclass's own checks (``__post_init__``) refuse.
    """
    types_ = field_types(cls)
    values: dict[str, Any] = {}
    if path is not None:
        _apply(values, str(path), read_yaml(path), types_)
    _apply(values, "--set", parse_sets(sets), types_)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    for key, value in given.items():
        _apply(values, f"option --{key.replace('_', '-')}", {key: value}, types_)
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in values and _required(f)]
    if missing:
        where = f" (not in {path})" if path is not None else ""
        raise ConfigError(f"missing required setting(s) {', '.join(missing)}{where}; give them as options or in a file")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path or cls.__name__}: {exc}") from exc


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config as plain YAML/JSON-safe values (tuples become lists, paths strings)."""

    def plain(value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        return str(value) if isinstance(value, Path) else value

    return {f.name: plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def dump_yaml(cfg: Any) -> str:
    """A config as YAML that :func:`load_config` reads back, each key preceded by its documentation."""
    docs = field_docs(type(cfg))
    chunks = []
    for key, value in to_dict(cfg).items():
        if docs.get(key):
            chunks.append(f"# {docs[key]}")
        chunks.append(yaml.safe_dump({key: value}, sort_keys=False, allow_unicode=True, width=10**6).rstrip())
    return "\n".join(chunks) + "\n"


def describe_fields(cls: type) -> list[tuple[str, str, str, str]]:
    """``(name, type, default, doc)`` for every field, for ``--help`` and the docs."""
    docs, types_, rows = field_docs(cls), field_types(cls), []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(f.default_factory())
        else:
            default = "required"
        rows.append((f.name, type_name(types_[f.name]), default, docs[f.name]))
    return rows
