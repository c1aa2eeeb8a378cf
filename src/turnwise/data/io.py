"""Reading and writing record files: JSON Lines or one JSON array, told apart by the first byte.

    from turnwise.data.io import iter_records, write_jsonl
    for line, record in iter_records("data.jsonl"):
        ...
    write_jsonl("out.jsonl", records)

JSON Lines are streamed line by line (a 10 GB file is fine); a JSON array is loaded whole. A file that is one
JSON object spread over several lines is loaded whole too: a MuDoCo-QR file ``{"dialogs": {id: dialog}}`` gives
one record per dialog, ``{"dialog_id": id, **dialog}``; any other object is one record. Every problem
is an :class:`~turnwise.errors.InputError` naming the file, the 1-based line where the record starts and
the rule broken. Problems with one record (a line of bad JSON, a record that is not an object) can be
skipped by a caller that wants to (:func:`iter_records_lenient`); problems with the whole file (binary
content, an empty file, a broken JSON array) cannot.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from turnwise.errors import InputError

_SNIFF_BYTES = 8192
_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n"
_TOO_DEEP = "bad JSON: nested too deeply"


def iter_records(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line, record)`` for every record of a JSONL file or a JSON array; raise on the first problem.

    Args:
        path: the file to read.

    Raises:
        InputError: binary content, an empty file, bad JSON, or a record that is not a JSON object.
    """
    for line, record in iter_records_lenient(path):
        if isinstance(record, InputError):
            raise record
        yield line, record


def iter_records_lenient(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | InputError]]:
    """Like :func:`iter_records`, but a broken record is yielded as its InputError, so reading goes on.

    Only per-record problems are yielded; a problem with the whole file still raises.
    """
    with _open(path) as f:
        first = _sniff(f, str(path))
        if first == b"[":
            yield from _iter_array(f, str(path))
        elif first == b"{" and _spread_object(f):
            yield from _iter_document(f, str(path))
        else:
            yield from _iter_lines(f, str(path))


def _spread_object(f: IO[bytes]) -> bool:
    """Whether the first non-empty line is not a whole JSON value (an object spread over lines); leaves ``f`` at 0."""
    try:
        for raw in f:
            if raw.strip():
                try:
                    json.loads(raw.decode("utf-8", errors="replace").removeprefix("\ufeff"))
                    return False
                except json.JSONDecodeError:
                    return True
                except RecursionError:
                    return False
        return False
    finally:
        f.seek(0)


def _iter_document(f: IO[bytes], path: str) -> Iterator[tuple[int, dict[str, Any] | InputError]]:
    data = f.read()
    _check_text(data, 0, path, final=True)
    try:
        value = json.loads(data.decode("utf-8").removeprefix("\ufeff"))
    except json.JSONDecodeError as exc:
        raise InputError(path, exc.lineno, f"bad JSON: {exc.msg} (column {exc.colno})") from None
    except RecursionError:
        raise InputError(path, 1, _TOO_DEEP) from None
    dialogs = value.get("dialogs") if isinstance(value, dict) else None
    if not isinstance(dialogs, dict):
        yield 1, _as_record(value, path, 1)
        return
    for n, (key, dialog) in enumerate(dialogs.items(), start=1):
        record = _as_record(dialog, path, n)
        yield n, record if isinstance(record, InputError) else {"dialog_id": key, **record}


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records as JSON Lines, atomically: a failure (even inside ``records``) leaves ``path`` untouched.

    The records go to a temporary file beside ``path`` which replaces it only once all are written, so an
    interrupted or failed run never leaves a half-written output.

    Args:
        path: the output file.
        records: JSON-serialisable objects; consumed lazily, so a generator streams.

    Returns:
        The number of records written.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    # os.open with 0o666 lets the umask decide the mode, like a plain open() would.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            count = 0
            for record in records:
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
                count += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count


def _open(path: str | Path) -> IO[bytes]:
    try:
        return open(path, "rb")  # the caller closes it
    except FileNotFoundError:
        raise InputError(str(path), None, "no such file") from None
    except IsADirectoryError:
        raise InputError(str(path), None, "is a directory, not a file") from None
    except PermissionError:
        raise InputError(str(path), None, "permission denied") from None


def _check_text(chunk: bytes, offset: int, path: str, *, final: bool, line: int | None = None) -> None:
    """Reject NUL bytes and invalid UTF-8.

    ``offset`` is where ``chunk`` starts in the file and ``line`` its first line (1 when None).
    """
    bad = chunk.find(b"\0")
    try:
        chunk.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the end of a sniffed chunk is not an error.
        if final or exc.reason != "unexpected end of data":
            bad = exc.start if bad < 0 else min(bad, exc.start)
    if bad >= 0:
        where = (line or 1) + chunk.count(b"\n", 0, bad)
        raise InputError(path, where, f"not a text file (binary content at byte {offset + bad})")


def _sniff(f: IO[bytes], path: str) -> bytes:
    """Check the head of the file and return its first non-space byte; leave ``f`` at the start."""
    head = f.read(_SNIFF_BYTES)
    _check_text(head, 0, path, final=len(head) < _SNIFF_BYTES)
    body = head[len(_BOM) :] if head.startswith(_BOM) else head
    stripped = body.lstrip(_WHITESPACE)
    while not stripped:
        more = f.read(_SNIFF_BYTES)
        if not more:
            raise InputError(path, 1, "file is empty")
        stripped = more.lstrip(_WHITESPACE)
    f.seek(0)
    return stripped[:1]


def _iter_lines(f: IO[bytes], path: str) -> Iterator[tuple[int, dict[str, Any] | InputError]]:
    offset = 0
    for number, raw in enumerate(f, start=1):
        _check_text(raw, offset, path, final=True, line=number)
        text = raw.decode("utf-8")
        if number == 1:
            text = text.removeprefix("\ufeff")
        offset += len(raw)
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield number, InputError(path, number, f"bad JSON: {exc.msg} (column {exc.colno})")
            continue
        except RecursionError:
            yield number, InputError(path, number, _TOO_DEEP)
            continue
        yield number, _as_record(value, path, number)


def _iter_array(f: IO[bytes], path: str) -> Iterator[tuple[int, dict[str, Any] | InputError]]:
    data = f.read()
    _check_text(data, 0, path, final=True)
    text = data.decode("utf-8").removeprefix("\ufeff")
    lines = _LineCounter(text)
    decoder = json.JSONDecoder()
    pos = _skip_space(text, text.index("[") + 1)
    if pos < len(text) and text[pos] == "]":
        _check_tail(text, pos, path, lines)
        return
    while True:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise InputError(path, exc.lineno, f"bad JSON: {exc.msg} (column {exc.colno})") from None
        except RecursionError:
            raise InputError(path, lines.at(pos), _TOO_DEEP) from None
        line = lines.at(pos)
        yield line, _as_record(value, path, line)
        pos = _skip_space(text, end)
        if pos == len(text):
            raise InputError(path, lines.at(pos), "bad JSON: the array is never closed with ']'")
        if text[pos] == "]":
            _check_tail(text, pos, path, lines)
            return
        if text[pos] != ",":
            raise InputError(path, lines.at(pos), "bad JSON: expected ',' or ']' after an array element")
        pos = _skip_space(text, pos + 1)


class _LineCounter:
    """1-based line of a position in ``text``, counting newlines only once as positions move forward."""

    def __init__(self, text: str):
        self.text, self.pos, self.line = text, 0, 1

    def at(self, pos: int) -> int:
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos
        return self.line


def _check_tail(text: str, close: int, path: str, lines: _LineCounter) -> None:
    """Nothing but white space may follow the array's closing bracket."""
    rest = _skip_space(text, close + 1)
    if rest < len(text):
        raise InputError(path, lines.at(rest), "bad JSON: extra data after the closing ']'")


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _as_record(value: Any, path: str, line: int) -> dict[str, Any] | InputError:
    if isinstance(value, dict):
        return value
    return InputError(path, line, f"record must be a JSON object, got {_json_type(value)}")


def _json_type(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
