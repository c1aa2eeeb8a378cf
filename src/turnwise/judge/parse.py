"""Strict parsers for judge replies: a ``[[rating]]``, a ``[[label]]``, a list of ``<tag>…</tag>`` items.

Each parser returns the value or raises :class:`ParseError` with a reason a person can read. None of
them guesses: the *last* ``[[…]]`` is the verdict (a judge often quotes the format, or revises itself,
before its final answer), and a last verdict that is out of range or unknown is a failure, never a
fallback to an earlier one and never a 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_RATING = re.compile(r"\[\[\s*([+-]?\d+(?:\.\d+)?)\s*\]\]")
_BRACKETED = re.compile(r"\[\[([^\[\]\n]{1,80})\]\]")


class ParseError(ValueError):
    """A judge reply that does not hold a valid verdict.

    Attributes:
        reason: why, in a few words (kept in the failure record with the raw text).
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def parse_rating(text: str, low: float = 0.0, high: float = 10.0) -> float:
    """The last ``[[x]]`` with a number inside, checked to lie in ``[low, high]``.

    ``[[7]]``, ``[[7.5]]``, ``Rating: [[10]]`` and ``[[ 8 ]]`` parse; with several ratings the last wins;
    ``[[11]]`` (out of range) and a reply with no ``[[number]]`` raise.

    Raises:
        ParseError: no rating, or the last rating is outside the range.
    """
    found = _RATING.findall(text)
    if not found:
        raise ParseError("no [[rating]] in the reply")
    value = float(found[-1])
    if not low <= value <= high:
        raise ParseError(f"rating {found[-1]} is outside {low:g}–{high:g}")
    return value


def _normal(label: str) -> str:
    return " ".join(label.lower().replace("_", " ").split()).strip(" .。:：")


def parse_label(text: str, labels: Mapping[str, float]) -> tuple[str, float]:
    """The last ``[[label]]`` of the reply, looked up (case and spacing ignored) in ``labels``.

    Args:
        text: the judge's reply.
        labels: accepted labels and the value each stands for, e.g. ``{"Fully supported": 1.0}``.

    Returns:
        The label as written in ``labels`` and its value.

    Raises:
        ParseError: no ``[[…]]`` at all, or the last one is not a known label.
    """
    lookup = {_normal(name): (name, value) for name, value in labels.items()}
    found = _BRACKETED.findall(text)
    if not found:
        raise ParseError("no [[verdict]] in the reply")
    key = _normal(found[-1])
    if key not in lookup:
        known = ", ".join(f"[[{name}]]" for name in labels)
        raise ParseError(f"unknown verdict [[{found[-1].strip()}]] (expected one of {known})")
    return lookup[key]


def parse_tagged(text: str, tag: str, *, none_marker: str | None = None) -> list[str]:
    """Every non-empty ``<tag>…</tag>`` item, in order.

    Args:
        text: the judge's reply.
        tag: the tag name, e.g. ``statement``.
        none_marker: a phrase the judge writes when there is nothing to list (matched case-insensitively);
            it makes an empty list a valid answer. Without it, or when it is absent, no items is a failure.

    Raises:
        ParseError: no items and no ``none_marker``.
    """
    items = [m.strip() for m in re.findall(rf"<{tag}>(.*?)</{tag}>", text, flags=re.DOTALL)]
    items = [item for item in items if item]
    if items:
        return items
    if none_marker is not None and none_marker.lower() in text.lower():
        return []
    expected = f" and no {none_marker!r}" if none_marker else ""
    raise ParseError(f"no <{tag}>…</{tag}> items{expected} in the reply")
