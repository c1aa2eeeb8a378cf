"""`turnwise convert` end to end: bad input is one line naming file, line and rule, with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from turnwise.cli.main import main

GOOD = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}


def run(capsys, *args: str) -> tuple[int, str, str]:
    """Run the real entry point in-process; return exit code, stdout and stderr."""
    with pytest.raises(SystemExit) as exc:
        main(["convert", *map(str, args)])
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def lines(*records: dict | str) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def msgs(*pairs: tuple[str, object]) -> dict:
    return {"messages": [{"role": role, "content": content} for role, content in pairs]}


BAD_INPUTS = [
    # name, content, line, rule (a part of it)
    ("bad_json.jsonl", lines(GOOD, '{"messages": [}'), 2, "bad JSON: Expecting value"),
    ("missing_key.jsonl", lines({"question_id": 1, "turns": ["a"]}, {"question_id": 2, "category": "x"}), 2,
     "missing key 'turns' (mt-bench)"),
    ("missing_value.jsonl", lines({"conversations": [{"from": "human"}]}), 1, "conversations[0] has no 'value'"),
    ("unknown_role.jsonl", lines(GOOD, msgs(("user", "Hi"), ("bot", "Hello"))), 2, "unknown role 'bot'"),
    ("unknown_from.jsonl", lines({"conversations": [{"from": "tool", "value": "x"}]}), 1,
     "unknown 'from' value 'tool'"),
    ("empty_content.jsonl", lines(GOOD, GOOD, msgs(("user", "Hi"), ("assistant", "  "))), 3,
     "message 1 (assistant) has empty content"),
    ("two_users.jsonl", lines(msgs(("user", "Hi"), ("user", "Hello"))), 1,
     "messages 0 and 1 are two user turns in a row"),
    ("wrong_turns.jsonl", lines({"question_id": 1, "turns": "hello"}), 1, "'turns' must be an array, got a string"),
    ("wrong_content.jsonl", lines(msgs(("user", 5))), 1, "message 0 (user) content must be a string, got int"),
    ("not_object.jsonl", lines(GOOD, "[1, 2]"), 2, "record must be a JSON object, got an array"),
    ("unknown_keys.jsonl", lines({"text": "hi"}), 1, "cannot tell the format from the keys ['text']"),
    ("array.json", "[\n" + json.dumps(GOOD) + ",\n\n" + json.dumps(msgs(("assistant", "x"))) + "\n]", 4,
     "message 0 should be a user turn, got assistant"),
    ("binary.jsonl", b"\x00\x01\x02PK\x03\x04", 1, "not a text file (binary content at byte 0)"),
    ("empty.jsonl", "", 1, "file is empty"),
]


@pytest.mark.parametrize(("name", "content", "line", "rule"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_is_one_line_with_file_line_and_rule(tmp_path, capsys, name, content, line, rule):
    src, out = tmp_path / name, tmp_path / "out.jsonl"
    src.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, stdout, stderr = run(capsys, src, out, "--to", "openai")
    assert code == 2
    assert stdout == ""
    assert stderr.count("\n") == 1 and stderr.startswith(f"error: {src}:{line}: ")
    assert rule in stderr and "Traceback" not in stderr
    assert not out.exists()


def test_a_failed_conversion_leaves_the_old_output_alone(tmp_path, capsys):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(lines(GOOD, GOOD, msgs(("user", "Hi"), ("user", "Hi"))))
    out.write_text("previous\n")
    code, _, stderr = run(capsys, src, out, "--to", "sharegpt")
    assert code == 2 and f"{src}:3:" in stderr
    assert out.read_text() == "previous\n"
    assert sorted(os.listdir(tmp_path)) == ["in.jsonl", "out.jsonl"]


def test_skip_invalid_keeps_valid_records_and_says_what_was_skipped(tmp_path, capsys):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(lines(GOOD, "{oops", GOOD, msgs(("user", "")), msgs(("user", " "))))
    code, stdout, stderr = run(capsys, src, out, "--to", "sharegpt", "--skip-invalid")
    assert (code, stdout) == (0, "")
    assert stderr == (
        f"{src} (openai) → {out} (sharegpt): read 5, wrote 2, skipped 3: "
        "2 × message N (user) has empty content (openai) at lines 4, 5; "
        "1 × bad JSON: Expecting property name enclosed in double quotes (column N) at line 2\n"
    )
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["in-1", "in-3"]


def test_summary_of_a_clean_conversion(tmp_path, capsys):
    src, out = tmp_path / "q.jsonl", tmp_path / "q.sharegpt.jsonl"
    src.write_text(lines({"question_id": 1, "category": "math", "turns": ["1+1?", "And 2+2?"]}))
    code, _, stderr = run(capsys, src, out, "--to", "sharegpt")
    assert code == 0
    assert stderr == f"{src} (mt-bench) → {out} (sharegpt): read 1, wrote 1, skipped 0\n"
    assert json.loads(out.read_text()) == {
        "id": "1", "conversations": [{"from": "human", "value": "1+1?"}], "followups": ["And 2+2?"],
        "meta": {"question_id": 1, "category": "math"}}


def test_from_names_the_input_format(tmp_path, capsys):
    src, out = tmp_path / "q.jsonl", tmp_path / "o.jsonl"
    src.write_text(lines({"question_id": 1, "turns": ["a"]}))
    code, _, stderr = run(capsys, src, out, "--from", "sharegpt", "--to", "openai")
    assert code == 2 and stderr == f"error: {src}:1: missing key 'conversations' (sharegpt)\n"


def test_impossible_target_and_unknown_format_are_one_line(tmp_path, capsys):
    src, out = tmp_path / "q.jsonl", tmp_path / "o.jsonl"
    src.write_text(lines(GOOD))
    code, _, stderr = run(capsys, src, out, "--to", "trl-pref")
    assert code == 2 and stderr.startswith(f"error: {src}:1: cannot be written as trl-pref: a conversation has no")
    code, _, stderr = run(capsys, src, out, "--to", "chatml")
    assert code == 2 and stderr == (
        "error: unknown format 'chatml' (expected one of openai, sharegpt, alpaca, mt-bench, mt-bench-101, "
        "mt-eval, mudoco, trl-sft, trl-pref)\n")
    code, _, stderr = run(capsys, tmp_path / "missing.jsonl", out, "--to", "openai")
    assert code == 2 and stderr == f"error: {tmp_path / 'missing.jsonl'}: no such file\n"


def test_the_installed_entry_point_prints_no_traceback(tmp_path):
    """The same through a real process: `python -m turnwise.cli.main convert ...`."""
    src, out = tmp_path / "bad.jsonl", tmp_path / "out.jsonl"
    src.write_text(lines(GOOD, msgs(("user", "Hi"), ("user", "Hi"))))
    cmd = [sys.executable, "-m", "turnwise.cli.main", "convert", str(src), str(out), "--to", "trl-sft"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent)
    assert result.returncode == 2
    assert result.stderr == f"error: {src}:2: messages 0 and 1 are two user turns in a row (openai)\n"
    assert not out.exists()
