"""Errors that carry enough context for a one-line message a user can act on."""

from __future__ import annotations

import importlib
from types import ModuleType


class TurnwiseError(Exception):
    """Base class for errors the CLI reports as one line, without a traceback."""


class InputError(TurnwiseError):
    """A malformed input record: names the file, the line (or record id) and the rule broken."""

    def __init__(self, path: str, line: int | str | None, rule: str):
        self.path = str(path)
        self.line = line
        self.rule = rule
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {rule}")


class SchemaError(ValueError):
    """A rule of the conversation schema is broken; readers wrap it in an InputError with the location."""


class ConfigError(TurnwiseError):
    """A setting is missing or contradicts another one."""


def require(module: str, extra: str) -> ModuleType:
    """Import an optional dependency or fail with the `pip install` that fixes it.

    Args:
        module: the module to import, e.g. ``"transformers"``.
        extra: the turnwise extra that installs it, e.g. ``"local"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise TurnwiseError(
            f"{module} is not installed; install it with: pip install 'turnwise[{extra}]'"
        ) from exc
