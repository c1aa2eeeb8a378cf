"""Reading JSONL and JSON arrays with line numbers; rejecting binary, empty and broken files; atomic writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from turnwise.data.io import iter_records, iter_records_lenient, write_jsonl
from turnwise.errors import InputError


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def error_of(path: Path) -> InputError:
    with pytest.raises(InputError) as exc:
        list(iter_records(path))
    return exc.value


def test_jsonl_lines_are_one_based_and_blank_lines_skipped(tmp_path):
    path = write(tmp_path, "a.jsonl", '{"a": 1}\n\n  \n{"b": 2}\n{"c": 3}')  # no final newline
    assert list(iter_records(path)) == [(1, {"a": 1}), (4, {"b": 2}), (5, {"c": 3})]


def test_jsonl_with_byte_order_mark_and_crlf(tmp_path):
    path = write(tmp_path, "a.jsonl", b'\xef\xbb\xbf{"a": "\xc3\xa9"}\r\n{"b": 2}\r\n')
    assert list(iter_records(path)) == [(1, {"a": "é"}), (2, {"b": 2})]


def test_json_array_gives_the_line_where_each_element_starts(tmp_path):
    text = '  [\n  {"a": 1},\n\n  {"b":\n     2},\n  {"c": [3,\n 4]}\n]\n'
    path = write(tmp_path, "a.json", text)
    assert list(iter_records(path)) == [(2, {"a": 1}), (4, {"b": 2}), (6, {"c": [3, 4]})]


def test_one_line_json_array_and_empty_array(tmp_path):
    assert list(iter_records(write(tmp_path, "a.json", '[{"a": 1}, {"b": 2}]'))) == [(1, {"a": 1}), (1, {"b": 2})]
    assert list(iter_records(write(tmp_path, "b.json", "[ ]\n"))) == []


def test_jsonl_is_streamed(tmp_path):
    """A bad line is only reached when the reader gets there: the file is not loaded up front."""
    path = write(tmp_path, "a.jsonl", '{"a": 1}\n{oops\n')
    records = iter_records(path)
    assert next(records) == (1, {"a": 1})
    with pytest.raises(InputError, match="bad JSON"):
        next(records)


@pytest.mark.parametrize(
    ("name", "data", "line", "rule"),
    [
        ("nul.jsonl", b'{"a": 1}\n{"b"\x00: 2}\n', 2, "not a text file (binary content at byte 13)"),
        ("latin1.jsonl", b'{"a": "caf\xe9"}\n', 1, "not a text file (binary content at byte 10)"),
        ("png.bin", b"\x89PNG\r\n\x1a\n\x00\x00", 1, "not a text file (binary content at byte 0)"),
        ("empty.jsonl", b"", 1, "file is empty"),
        ("blank.jsonl", b"\n  \n\t\n", 1, "file is empty"),
        ("bad.jsonl", b'{"a": 1}\n{"a": 1,}\n', 2,
         "bad JSON: Expecting property name enclosed in double quotes (column 9)"),
        ("list.jsonl", b'{"a": 1}\n[1, 2]\n', 2, "record must be a JSON object, got an array"),
        ("string.json", b'[{"a": 1},\n "x"]', 2, "record must be a JSON object, got a string"),
        ("comma.json", b'[{"a": 1},\n]', 2, "bad JSON: Expecting value (column 1)"),
        ("open.json", b'[{"a": 1},\n{"b": 2}\n', 3, "bad JSON: the array is never closed with ']'"),
        ("tail.json", b'[{"a": 1}]\n\n{"b": 2}', 3, "bad JSON: extra data after the closing ']'"),
        ("sep.json", b'[{"a": 1}\n {"b": 2}]', 2, "bad JSON: expected ',' or ']' after an array element"),
    ],
)
def test_malformed_files_name_the_line_and_the_rule(tmp_path, name, data, line, rule):
    error = error_of(write(tmp_path, name, data))
    assert (error.line, error.rule) == (line, rule)
    assert str(error) == f"{tmp_path / name}:{line}: {rule}"


def test_binary_content_after_the_first_block_names_its_line(tmp_path):
    good = b'{"text": "' + b"x" * 10_000 + b'"}\n'
    error = error_of(write(tmp_path, "late.jsonl", good + good + b'{"a": "\xff"}\n'))
    assert (error.line, error.rule) == (3, f"not a text file (binary content at byte {2 * len(good) + 7})")


def test_missing_file_and_directory(tmp_path):
    assert str(error_of(tmp_path / "nope.jsonl")) == f"{tmp_path / 'nope.jsonl'}: no such file"
    assert error_of(tmp_path).rule == "is a directory, not a file"


def test_lenient_reading_yields_broken_records_and_goes_on(tmp_path):
    path = write(tmp_path, "a.jsonl", '{"a": 1}\nnot json\n7\n{"b": 2}\n')
    got = list(iter_records_lenient(path))
    assert [line for line, _ in got] == [1, 2, 3, 4]
    assert got[0][1] == {"a": 1} and got[3][1] == {"b": 2}
    assert isinstance(got[1][1], InputError) and got[1][1].rule == "bad JSON: Expecting value (column 1)"
    assert isinstance(got[2][1], InputError) and got[2][1].rule == "record must be a JSON object, got a number"


def test_write_jsonl_keeps_unicode_and_counts(tmp_path):
    path = tmp_path / "out.jsonl"
    assert write_jsonl(path, [{"content": "你好"}, {"n": 1}]) == 2
    assert path.read_text(encoding="utf-8") == '{"content": "你好"}\n{"n": 1}\n'
    assert list(iter_records(path)) == [(1, {"content": "你好"}), (2, {"n": 1})]


def test_write_jsonl_is_atomic_when_the_records_fail(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"old": true}\n')

    def records():
        yield {"new": 1}
        raise InputError("in.jsonl", 2, "broken")

    with pytest.raises(InputError):
        write_jsonl(path, records())
    assert path.read_text() == '{"old": true}\n'
    assert os.listdir(tmp_path) == ["out.jsonl"]  # no temporary file left behind


def test_write_jsonl_never_creates_a_partial_new_file(tmp_path):
    path = tmp_path / "new.jsonl"
    with pytest.raises(TypeError):
        write_jsonl(path, [{"ok": 1}, {"bad": object()}])
    assert not path.exists() and os.listdir(tmp_path) == []


def test_write_then_read_round_trip(tmp_path):
    records = [{"id": str(i), "messages": [{"role": "user", "content": f"q{i}\n"}]} for i in range(3)]
    path = tmp_path / "r.jsonl"
    write_jsonl(path, iter(records))
    assert [json.loads(line) for line in path.read_text().splitlines()] == records
