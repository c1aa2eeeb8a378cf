"""Read and write conversations in the formats people already have, by name.

    conversations, skipped = read_records("question.jsonl")            # format detected from the keys
    write_records("question.openai.jsonl", conversations, "openai")
    report = convert_file("in.json", "out.jsonl", "sharegpt", skip_invalid=True)

Formats (see :mod:`turnwise.data.formats_chat` and :mod:`turnwise.data.formats_bench` for the fields):

=============  ===========================================================================
openai         ``{"messages": [...]}``, plus ``id``, ``followups`` and ``meta``
sharegpt       ``{"conversations": [{"from", "value"}]}``
alpaca         ``{"instruction", "input", "output", "system", "history"}`` (LLaMA-Factory)
mt-bench       FastChat's ``{"question_id", "category", "turns"}``: questions, no answers
mt-bench-101   ``{"task", "id", "history": [{"user", "bot"}]}``
mt-eval        ``{"conversation": [{"user", "sys"}]}``
mudoco         MuDoCo-QR: a ``{"dialogs": {id: {"turns": [{"number", "utterance"}]}}}`` file, or JSONL of
               ``{"dialog_id", "turns"}`` records
trl-sft        TRL's conversational SFT ``{"messages"}`` (read like openai)
trl-pref       TRL's conversational preference ``{"prompt", "chosen", "rejected"}``
=============  ===========================================================================

trl-pref rows are read as :class:`PreferencePair`; written to any other format, a pair becomes its
prompt followed by the *chosen* answer (the rejected one is dropped). A conversation cannot be written
as trl-pref: it has no rejected answer.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from turnwise.data import formats_bench as bench
from turnwise.data import formats_chat as chat
from turnwise.data.formats_chat import Item
from turnwise.data.io import iter_records_lenient, write_jsonl
from turnwise.errors import ConfigError, InputError, SchemaError


class Format(NamedTuple):
    read: Callable[[dict[str, Any], str], Item]
    write: Callable[[Item], dict[str, Any]]


FORMATS: dict[str, Format] = {
    "openai": Format(chat.read_openai, chat.write_openai),
    "sharegpt": Format(chat.read_sharegpt, chat.write_sharegpt),
    "alpaca": Format(chat.read_alpaca, chat.write_alpaca),
    "mt-bench": Format(bench.read_mt_bench, bench.write_mt_bench),
    "mt-bench-101": Format(bench.read_mt_bench_101, bench.write_mt_bench_101),
    "mt-eval": Format(bench.read_mt_eval, bench.write_mt_eval),
    "mudoco": Format(bench.read_mudoco, bench.write_mudoco),
    "trl-sft": Format(chat.read_openai, chat.write_trl_sft),
    "trl-pref": Format(chat.read_trl_pref, chat.write_trl_pref),
}

# The keys that give a format away. trl-sft is never detected: it reads exactly like openai.
_SIGNATURES: dict[str, set[str]] = {
    "openai": {"messages"},
    "sharegpt": {"conversations"},
    "alpaca": {"instruction", "output"},
    "mt-bench": {"turns"},
    "mt-bench-101": {"task", "history"},
    "mt-eval": {"conversation"},
    "mudoco": {"dialog_id", "turns"},
    "trl-pref": {"chosen", "rejected"},
}

_SHOWN_LOCATIONS = 3  # lines listed per skip rule in reports
_SHOWN_RULES = 5  # rules listed in the one-line summary


def detect_format(record: dict[str, Any]) -> str:
    """The format a record is in, from its keys; of several that fit, the one whose keys include all the others'.

    Raises:
        SchemaError: no format fits the keys, or several do and none is the most specific.
    """
    matches = [name for name, keys in _SIGNATURES.items() if keys <= record.keys()]
    specific = [m for m in matches if all(_SIGNATURES[o] <= _SIGNATURES[m] for o in matches)]
    if len(specific) == 1:
        return specific[0]
    if not matches:
        raise SchemaError(f"cannot tell the format from the keys {sorted(record)}; name it with --from "
                          f"(one of {', '.join(FORMATS)})")
    raise SchemaError(f"the keys fit several formats ({', '.join(matches)}); name it with --from")


def check_format(fmt: str) -> str:
    """Return ``fmt`` if it is a known format name, else raise ConfigError listing the names."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    return fmt


@dataclass
class SkipReport:
    """What reading a file found: records seen, and the invalid ones skipped, counted by rule.

    It fills in as the records are iterated. Rules are grouped with numbers replaced by ``N``
    (``message N (user) has empty content``), keeping the first few lines where each was broken.
    """

    path: str
    fmt: str | None = None
    read: int = 0
    written: int | None = None
    counts: Counter[str] = field(default_factory=Counter)
    lines: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """Records skipped."""
        return sum(self.counts.values())

    @property
    def kept(self) -> int:
        return self.read - self.total

    def add(self, error: InputError) -> None:
        rule = re.sub(r"\b\d+\b", "N", error.rule)
        self.counts[rule] += 1
        shown = self.lines.setdefault(rule, [])
        if len(shown) < _SHOWN_LOCATIONS:
            shown.append(error.line)

    def to_dict(self) -> dict[str, Any]:
        rules = {rule: {"count": n, "lines": self.lines[rule]} for rule, n in self.counts.most_common()}
        return {"path": self.path, "format": self.fmt, "read": self.read, "skipped": self.total, "rules": rules}

    def summary(self) -> str:
        """One line of counts: ``read 5, wrote 3, skipped 2: 2 × missing key 'turns' (mt-bench) at lines 2, 4``."""
        text = f"read {self.read}" + (f", wrote {self.written}" if self.written is not None else "")
        if not self.total:
            return text + ", skipped 0"
        common = self.counts.most_common()
        parts = [f"{n} × {rule} at {self._where(rule)}" for rule, n in common[:_SHOWN_RULES]]
        if len(common) > _SHOWN_RULES:
            parts.append(f"{len(common) - _SHOWN_RULES} more rules (see the report's to_dict())")
        return text + f", skipped {self.total}: " + "; ".join(parts)

    def _where(self, rule: str) -> str:
        shown = self.lines[rule]
        more = ", …" if self.counts[rule] > len(shown) else ""
        return ("line " if len(shown) == 1 and not more else "lines ") + ", ".join(map(str, shown)) + more


def read_records(
    path: str | Path, fmt: str | None = None, *, skip_invalid: bool = False
) -> tuple[Iterator[Item], SkipReport]:
    """Stream the conversations (or preference pairs, for trl-pref) of a file.

    Args:
        path: a JSONL file or a JSON array.
        fmt: the format name; detected from the first record when None.
        skip_invalid: skip invalid records and count them in the report, instead of raising.

    Returns:
        The items (lazily, in file order) and a :class:`SkipReport` that fills in as they are read.

    Raises:
        ConfigError: an unknown format name (at once).
        InputError: while iterating, the first invalid record (unless skipped), or a broken file.
    """
    if fmt is not None:
        check_format(fmt)
    report = SkipReport(str(path), fmt)
    return (item for _, item in iter_located(path, report, skip_invalid=skip_invalid)), report


def iter_located(path: str | Path, report: SkipReport, *, skip_invalid: bool = False) -> Iterator[tuple[int, Item]]:
    """``(line, item)`` pairs in the format ``report.fmt`` (detected when None); see :func:`read_records`."""
    path = str(path)
    stem = Path(path).stem
    for line, record in iter_records_lenient(path):
        report.read += 1
        if not isinstance(record, InputError) and report.fmt is None:
            report.fmt = _detect(path, line, record)
        try:
            if isinstance(record, InputError):
                raise record
            item = _parse(path, line, record, report.fmt, f"{stem}-{line}")
        except InputError as error:
            if not skip_invalid:
                raise
            report.add(error)
            continue
        yield line, item


def _detect(path: str, line: int, record: dict[str, Any]) -> str:
    try:
        return detect_format(record)
    except SchemaError as exc:
        raise InputError(path, line, str(exc)) from None


def _parse(path: str, line: int, record: dict[str, Any], fmt: str, default_id: str) -> Item:
    try:
        return FORMATS[fmt].read(record, default_id)
    except SchemaError as exc:
        raise InputError(path, line, f"{exc} ({fmt})") from None


def write_records(path: str | Path, items: Iterable[Item], fmt: str) -> int:
    """Write items as JSONL in ``fmt``, atomically; returns the number written.

    Raises:
        InputError: an item cannot be written in ``fmt`` (e.g. an unanswered conversation as alpaca);
            it names the item's id, and ``path`` is left as it was.
    """
    writer = FORMATS[check_format(fmt)].write

    def rows() -> Iterator[dict[str, Any]]:
        for item in items:
            try:
                yield writer(item)
            except SchemaError as exc:
                raise InputError(str(path), None, f"record {item.id!r} cannot be written as {fmt}: {exc}") from None

    return write_jsonl(path, rows())


def convert_file(
    src: str | Path, dst: str | Path, to_fmt: str, from_fmt: str | None = None, *, skip_invalid: bool = False
) -> SkipReport:
    """Convert a record file to another format; ``dst`` is written atomically, or not at all.

    A record that cannot be written in ``to_fmt`` is an invalid input record like any other: it raises an
    InputError naming ``src`` and its line, or is skipped and counted with ``skip_invalid``.

    Returns:
        The report, with ``written`` set.
    """
    writer = FORMATS[check_format(to_fmt)].write
    report = SkipReport(str(src), check_format(from_fmt) if from_fmt else None)

    def rows() -> Iterator[dict[str, Any]]:
        for line, item in iter_located(src, report, skip_invalid=skip_invalid):
            try:
                yield writer(item)
            except SchemaError as exc:
                error = InputError(str(src), line, f"cannot be written as {to_fmt}: {exc}")
                if not skip_invalid:
                    raise error from None
                report.add(error)

    report.written = write_jsonl(dst, rows())
    return report
