"""MuDoCo-QR files read as conversations: one record per dialog, message k = turn number k + 1, gaps marked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turnwise.data.formats import convert_file, detect_format, read_records
from turnwise.data.formats_bench import MISSING_TURN
from turnwise.errors import InputError

DIALOGS = {
    "domain": "news",
    "dialogs": {
        "d1": {"split": "train", "turns": [
            {"number": 2, "utterance": "Mariah Carey is touring.", "graded": False},
            {"number": 1, "utterance": "Any news on Mariah Carey?", "graded": True, "rewrite_required": False},
            {"number": 3, "utterance": "When does she start?", "graded": True, "rewrite_required": True}]},
        "d2": {"split": "test", "turns": [  # starts at 2 and skips 4: both become marked placeholders
            {"number": 2, "utterance": "There are 50 stations.", "graded": False},
            {"number": 3, "utterance": "How many are open?", "graded": True, "rewrite_required": True},
            {"number": 5, "utterance": "Thanks.", "graded": True, "rewrite_required": False}]},
    },
}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "mudoco_x.json"
    path.write_text(json.dumps(data, indent=2))  # spread over lines, as the published files are
    return path


def test_a_dialogs_file_reads_as_one_conversation_per_dialog(tmp_path: Path) -> None:
    items, report = read_records(write(tmp_path, DIALOGS))
    first, second = list(items)
    assert report.fmt == "mudoco" and (first.id, second.id) == ("d1", "d2")
    assert [m["role"] for m in first.messages] == ["user", "assistant", "user"]
    assert first.messages[2]["content"] == "When does she start?"
    assert first.meta["split"] == "train" and first.meta["turn_fields"][2]["rewrite_required"] is True
    assert [m["content"] for m in second.messages] == [MISSING_TURN.format(n=1), "There are 50 stations.",
                                                       "How many are open?", MISSING_TURN.format(n=4), "Thanks."]
    assert second.meta["missing_turns"] == [1, 4]


def test_mudoco_written_back_drops_the_placeholders(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    convert_file(write(tmp_path, DIALOGS), out, "mudoco")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [t["number"] for t in rows[1]["turns"]] == [2, 3, 5] and rows[1]["dialog_id"] == "d2"
    assert rows[0]["turns"][2] == {"number": 3, "utterance": "When does she start?", "graded": True,
                                   "rewrite_required": True}
    again, _ = read_records(out)
    assert [c.messages for c in again] == [c.messages for c in read_records(write(tmp_path, DIALOGS))[0]]


def test_the_most_specific_format_wins_and_bad_dialogs_are_named(tmp_path: Path) -> None:
    assert detect_format({"dialog_id": "x", "turns": []}) == "mudoco"
    assert detect_format({"turns": ["a question"]}) == "mt-bench"
    bad = {"dialogs": {"d1": {"turns": [{"number": 1, "utterance": "Hi"}, {"number": 1, "utterance": "Again"}]}}}
    with pytest.raises(InputError, match=r"mudoco_x.json:1: turns\[1\] repeats turn number 1 \(mudoco\)"):
        list(read_records(write(tmp_path, bad))[0])


def test_an_object_spread_over_lines_without_dialogs_is_one_record(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "Hi"}]}, indent=2))
    [conv] = list(read_records(path)[0])
    assert conv.messages == [{"role": "user", "content": "Hi"}]
