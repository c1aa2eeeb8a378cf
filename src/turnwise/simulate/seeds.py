"""Seed first turns for simulation, read lazily from dialogue files or plain text.

    seeds, report = read_seeds("sharegpt.json")       # the first user turn of each dialogue
    seeds, report = read_seeds("questions.txt")       # one seed per non-empty line

Any format :func:`turnwise.data.formats.read_records` reads (ShareGPT, OpenAI, Alpaca, MT-Bench, ...)
gives the first user turn of each record, with the record's id and its system message (which the
assistant keeps). A ``.txt`` file (or ``fmt="text"``) gives one seed per non-empty line, with the id
``<file stem>-<line number>``, so ids stay stable when lines are appended.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turnwise.data.formats import SkipReport, read_records
from turnwise.data.schema import PreferencePair
from turnwise.errors import InputError

TEXT_FORMAT = "text"


@dataclass
class Seed:
    """A first user turn to grow into a dialogue.

    Attributes:
        id: stable id: the record's id, or ``<stem>-<line>`` for text files.
        text: the first user turn.
        system: the assistant's system message from the source record, if any.
        meta: the source record's meta.
    """

    id: str
    text: str
    system: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def read_seeds(
    path: str | Path, fmt: str | None = None, *, skip_invalid: bool = False
) -> tuple[Iterator[Seed], SkipReport]:
    """Stream the seeds of a file; see the module docstring.

    Args:
        path: a dialogue file (JSONL or a JSON array) or a text file.
        fmt: ``text``, a dialogue format name, or None (``text`` for ``.txt``, otherwise detected).
        skip_invalid: skip malformed records and count them in the report, instead of raising.

    Returns:
        The seeds (lazily, in file order) and a report that fills in as they are read.
    """
    path = Path(path)
    if fmt == TEXT_FORMAT or (fmt is None and path.suffix.lower() == ".txt"):
        report = SkipReport(str(path), TEXT_FORMAT)
        return _text_seeds(path, report), report
    items, report = read_records(path, fmt, skip_invalid=skip_invalid)
    return (_from_item(item) for item in items), report


def _text_seeds(path: Path, report: SkipReport) -> Iterator[Seed]:
    with open(path, encoding="utf-8-sig") as handle:
        for line_no, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            report.read += 1
            yield Seed(f"{path.stem}-{line_no}", text)


def _from_item(item: Any) -> Seed:
    if isinstance(item, PreferencePair):
        messages = item.prompt
        first = next(m["content"] for m in messages if m["role"] == "user")
        system = messages[0]["content"] if messages[0]["role"] == "system" else None
        return Seed(item.id, first, system, dict(item.meta))
    turns = item.user_turns
    if not turns:  # the schema requires a user turn after the system message; kept as a guard
        raise InputError("", item.id, "record has no user turn to seed a dialogue with")
    return Seed(item.id, turns[0], item.system, dict(item.meta))
