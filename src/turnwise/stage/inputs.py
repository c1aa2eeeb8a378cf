"""What adapters share: reading conversations from files or stage records, and small summaries."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from turnwise.data.schema import Conversation, PreferencePair
from turnwise.errors import ConfigError
from turnwise.records import STATUSES, read_stage_output

if TYPE_CHECKING:
    from turnwise.data.formats import SkipReport


def is_stage_output(path: Path) -> bool:
    """Whether a file holds stage records (``{id, status, ...}`` on every line) rather than plain data."""
    if not path.is_file() or path.suffix != ".jsonl":
        return False
    from turnwise.data.io import iter_records

    for _, record in iter_records(path):
        return "id" in record and record.get("status") in STATUSES
    return False


def read_conversations(path: Path, limit: int = 0, fmt: str | None = None, *, skip_invalid: bool = False
                       ) -> tuple[list[Conversation], SkipReport | None]:
    """The conversations of a file in any format turnwise reads, or the ``ok`` ones of a stage's records.

    Args:
        path: a conversation file, or the records of a stage such as simulate (``{id, status, messages}``).
        limit: keep the first ``limit`` (0 = all).
        fmt: the file's format; detected from the first record when None.
        skip_invalid: skip malformed records (counted in the returned report) instead of stopping.

    Returns:
        The conversations and, for a plain file, what reading it skipped.

    Raises:
        ConfigError: the file holds preference pairs, not conversations.
    """
    report = None
    if is_stage_output(path) and fmt is None:
        # In id order: a stage writes records as their calls finish, and what reads them must not depend on that.
        rows = sorted((r for r in read_stage_output(path) if r["status"] == "ok" and r.get("messages")),
                      key=lambda r: r["id"])
        # The stage's own cost leaves with it: the detect core adds a record's meta.cost to its totals, and
        # would read simulate's {user, assistant} costs as its own.
        conversations = [Conversation(r["id"], r["messages"], meta={k: v for k, v in r.get("meta", {}).items()
                                                                    if k != "cost"}) for r in rows]
    elif path.stat().st_size == 0:
        conversations = []
    else:
        from turnwise.data.formats import read_records

        items, report = read_records(path, fmt, skip_invalid=skip_invalid)
        conversations = []
        for item in items:
            if isinstance(item, PreferencePair):
                raise ConfigError(f"{path}: expected conversations, found preference pairs (record {item.id!r})")
            conversations.append(item)
            if limit and len(conversations) >= limit:
                break
    return (conversations[:limit] if limit else conversations), report


def percent(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole else "—"


def merge_costs(*costs: dict[str, Any]) -> dict[str, int]:
    """The sum of several flat cost dicts (calls, cached, attempts, tokens...)."""
    total: dict[str, int] = {}
    for cost in costs:
        for key, value in cost.items():
            if isinstance(value, int | float):
                total[key] = total.get(key, 0) + value
    return total


def tally(outcomes: list[tuple[bool, str]], top: int = 4) -> dict[str, Any]:
    """How many model replies a step could read: ``{calls, read, share, reasons}`` from ``(read, why not)`` pairs."""
    from collections import Counter

    read = sum(ok for ok, _ in outcomes)
    reasons = Counter(why or "empty reply" for ok, why in outcomes if not ok)
    return {"calls": len(outcomes), "read": read, "share": round(read / len(outcomes), 4) if outcomes else None,
            "reasons": dict(reasons.most_common(top))}


def replies_line(tallies: dict[str, dict[str, Any]]) -> str:
    """``replies read: judge verdict 8/8, rating 7/8`` for a stage's summary (empty when no reply was parsed)."""
    parts = [f"{name} {t['read']}/{t['calls']}" for name, t in tallies.items() if t["calls"]]
    return f"replies read: {', '.join(parts)}" if parts else ""


def short(text: str, limit: int = 160) -> str:
    """One line of real text for a report: whitespace collapsed, cut at ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
