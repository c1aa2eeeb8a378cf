"""turnwise's N-turn evaluation format: one JSON object per line, for dialogues of your own domain.

    {"id": "kyoto-1", "category": "travel", "turns": ["Plan 3 days in Kyoto.", "Make it cheaper.",
     "Swap the second day for Nara.", "What did that save?", ...]}

Fields (only ``id`` and ``turns`` are required):

==============  ================================================================================
id              a string or number, unique in the file
turns           the user turns, in order (any number ≥ 1; 8 for an MT-Bench++-style dialogue)
category        a label reported on its own (default ``general``)
references      a reference answer per turn, ``null`` where there is none (shown to the judge)
judged          1-based numbers of the turns to grade (default: every turn)
history         ``own`` (default: the model's own earlier answers) or ``gold`` (``answers`` instead)
answers         gold answers per turn (needed with ``"history": "gold"``; ``null`` allowed after)
system          a system message for the answering model
==============  ================================================================================

Every other key is kept as the dialogue's metadata. A broken record is an InputError naming the file,
the line and the rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from turnwise.data.formats_chat import ID_TYPES, get, json_type
from turnwise.data.io import iter_records
from turnwise.errors import InputError, SchemaError
from turnwise.eval.items import EvalItem

KNOWN = ("id", "turns", "category", "references", "judged", "history", "answers", "system")


def read_turns(path: str | Path) -> list[EvalItem]:
    """Every dialogue of an N-turn file (see the module docstring)."""
    items = []
    for line, record in iter_records(path):
        try:
            items.append(parse_turns(record))
        except SchemaError as exc:
            raise InputError(str(path), line, f"{exc} (turns)") from None
    return items


def parse_turns(record: dict[str, Any]) -> EvalItem:
    """One record of the format; raises SchemaError naming the rule broken."""
    rid = get(record, "id", ID_TYPES)
    turns = _strings(record, "turns", nullable=False)
    if turns is None or not turns:
        raise SchemaError("'turns' must hold at least one user turn")
    judged = get(record, "judged", list, default=None)
    if judged is not None and not all(isinstance(k, int) and not isinstance(k, bool) for k in judged):
        raise SchemaError("'judged' must be a list of turn numbers (1-based)")
    meta = {k: v for k, v in record.items() if k not in KNOWN}
    return EvalItem(
        id=str(rid),
        benchmark="turns",
        category=str(get(record, "category", ID_TYPES, default="general")),
        turns=turns,
        judged=list(judged) if judged is not None else list(range(1, len(turns) + 1)),
        history=get(record, "history", str, default="own"),
        gold=_strings(record, "answers", nullable=True),
        references=_strings(record, "references", nullable=True),
        system=get(record, "system", str, default=None),
        meta=meta,
    )


def _strings(record: dict[str, Any], key: str, *, nullable: bool) -> list[Any] | None:
    value = get(record, key, list, default=None) if nullable else get(record, key, list)
    if value is None:
        return None
    for i, entry in enumerate(value):
        if entry is None and nullable:
            continue
        if not isinstance(entry, str):
            raise SchemaError(f"{key}[{i}] must be a string{' or null' if nullable else ''}, got {json_type(entry)}")
        if not entry.strip() and not nullable:
            raise SchemaError(f"{key}[{i}] is empty")
    return list(value)
