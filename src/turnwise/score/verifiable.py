"""Scorers for data with ground truth, behind the same interface as LongReward, so recipes can mix them.

    exact = VerifiableScorer("exact", exact_match)
    numeric = VerifiableScorer("numeric", numeric_match)
    mine = function_scorer("my_pkg.checks:same_answer")     # fn(response, reference) -> bool | 0–10

The reference answer is ``ScoreInput.reference`` (``meta.reference`` of an input record); without one
the dimension is ``n/a``. A check returns True/False (10 or 0) or a number in 0–10; a check that raises,
or returns anything else, fails the response with the reason (never a silent 0).
"""

from __future__ import annotations

import importlib
import math
import re
import string
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

from turnwise.errors import ConfigError
from turnwise.score.types import FAILED, NA, OK, DimensionScore, ScoreBatch, ScoreInput, ScoreResult

Check = Callable[[str, str], "bool | float"]

_PUNCT = set(string.punctuation) | set("，。！？；：、“”‘’（）《》【】…—·「」")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")


def exact_match(response: str, reference: str) -> bool:
    """Identical after stripping surrounding whitespace."""
    return response.strip() == reference.strip()


def normalize(text: str) -> str:
    """SQuAD-style normalisation: NFKC, lower case, punctuation (ASCII and CJK) and English articles
    removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if ch in _PUNCT else ch for ch in text)
    return " ".join(_ARTICLES.sub(" ", text).split())


def normalized_match(response: str, reference: str) -> bool:
    """Equal after :func:`normalize`."""
    return normalize(response) == normalize(reference)


def last_number(text: str) -> float | None:
    """The last number written in ``text`` (``1,234.5`` and ``-3e2`` included), or None."""
    found = _NUMBER.findall(text)
    return float(found[-1].replace(",", "")) if found else None


def numeric_match(response: str, reference: str, rel_tol: float = 1e-6, abs_tol: float = 1e-9) -> bool:
    """The response's last number equals the reference's (within tolerance); no number is a mismatch.

    Raises:
        ValueError: the reference holds no number (a data problem, reported as a failure).
    """
    expected = last_number(reference)
    if expected is None:
        raise ValueError(f"the reference {reference[:40]!r} holds no number")
    got = last_number(response)
    return got is not None and math.isclose(got, expected, rel_tol=rel_tol, abs_tol=abs_tol)


def _as_score(value: Any) -> float:
    if isinstance(value, bool):
        return 10.0 if value else 0.0
    if isinstance(value, int | float) and 0 <= value <= 10:
        return float(value)
    raise ValueError(f"returned {value!r}; expected True/False or a number in 0–10")


class VerifiableScorer:
    """One dimension from a check against the reference answer.

    Args:
        name: the dimension's name (and the scorer's).
        check: ``check(response, reference) -> bool | float``.
    """

    def __init__(self, name: str, check: Check):
        self.name = name
        self.check = check
        self.dimensions = (name,)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "check": f"{self.check.__module__}:{getattr(self.check, '__qualname__', '?')}"}

    async def score(self, item: ScoreInput, responses: Sequence[str]) -> ScoreBatch:
        return ScoreBatch([ScoreResult([self._one(item.reference, r)]) for r in responses])

    def _one(self, reference: str | None, response: str) -> DimensionScore:
        if reference is None:
            return DimensionScore(self.name, NA, reason="no reference answer")
        try:
            value = _as_score(self.check(response, reference))
        except Exception as exc:  # a user's check: its failure is data, not a crash
            return DimensionScore(self.name, FAILED, reason=f"{type(exc).__name__}: {exc}")
        return DimensionScore(self.name, OK, value)


BUILTIN_CHECKS: dict[str, Check] = {"exact": exact_match, "normalized": normalized_match, "numeric": numeric_match}


def load_callable(target: str, what: str = "check") -> Callable[..., Any]:
    """The function named ``module:function``.

    Raises:
        ConfigError: the name is malformed, or the module or the function cannot be found.
    """
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"a custom {what} is named 'module:function', got {target!r}")
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load the {what} {target!r}: {exc}") from exc
    if not callable(found):
        raise ConfigError(f"{target!r} is not a function")
    return found


def load_check(target: str) -> Check:
    """A check by name: a built-in one (``exact``, ``normalized``, ``numeric``) or ``module:function``."""
    return BUILTIN_CHECKS.get(target) or load_callable(target)


def function_scorer(target: str) -> VerifiableScorer:
    """A scorer from ``module:function``, named after the function.

    Raises:
        ConfigError: the module or the function cannot be found.
    """
    return VerifiableScorer(target.partition(":")[2], load_callable(target))
