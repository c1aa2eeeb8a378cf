"""The real benchmark files convert through openai and sharegpt and come back exactly as they were.

Reads ../shared/data beside the repository (see its SOURCES.md); skipped when that folder is absent,
e.g. in a user's own clone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turnwise.cli.main import main
from turnwise.data.formats import read_records

DATA = Path(__file__).parents[2].parent / "shared" / "data"

FILES = [
    # path, format, records, user turns per record (None: varies)
    ("mt_bench/question.jsonl", "mt-bench", 80, 2),
    ("mt_eval/mt-bench_extended.jsonl", "mt-eval", 80, 5),
    ("mt_bench_101/mtbench101.jsonl", "mt-bench-101", 1388, None),
]


def source(relative: str) -> Path:
    path = DATA / relative
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared benchmark data lives beside the repository, not in it")
    return path


def parsed(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def convert(capsys, src: Path, dst: Path, to_fmt: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main(["convert", str(src), str(dst), "--to", to_fmt])
    err = capsys.readouterr().err
    assert exc.value.code == 0, err
    return err


@pytest.mark.parametrize("via", ["openai", "sharegpt"])
@pytest.mark.parametrize(("relative", "fmt", "count", "turns"), FILES, ids=[f[1] for f in FILES])
def test_round_trip_preserves_records(tmp_path, capsys, relative, fmt, count, turns, via):
    src = source(relative)
    middle, back = tmp_path / f"via.{via}.jsonl", tmp_path / "back.jsonl"
    err = convert(capsys, src, middle, via)
    assert f"({fmt}) → {middle} ({via}): read {count}, wrote {count}, skipped 0" in err
    convert(capsys, middle, back, fmt)
    assert parsed(back) == parsed(src)

    conversations, report = read_records(middle)
    conversations = list(conversations)
    assert (report.fmt, len(conversations)) == (via, count)
    assert len({c.id for c in conversations}) == count  # ids stay unique (mt-bench-101 ids repeat across tasks)
    if turns is not None:
        assert {len(c.user_turns) for c in conversations} == {turns}


def test_mt_eval_file_without_final_newline_has_80_sessions_of_5_turns():
    src = source("mt_eval/mt-bench_extended.jsonl")
    assert not src.read_bytes().endswith(b"\n")  # `wc -l` says 79
    conversations, _ = read_records(src)
    first, *rest = list(conversations)
    assert len(rest) + 1 == 80
    assert first.id == "81" and [m["role"] for m in first.messages] == ["user", "assistant"] * 5
    assert first.meta["turn_fields"] == [{"id": f"81_{i}"} for i in range(5)]


def test_messages_match_the_source_text(tmp_path, capsys):
    """Turn text survives untouched (some MT-Bench-101 turns carry leading or trailing spaces)."""
    src = source("mt_bench_101/mtbench101.jsonl")
    out = tmp_path / "openai.jsonl"
    convert(capsys, src, out, "openai")
    for original, converted in zip(parsed(src), parsed(out), strict=True):
        expected = [{"role": role, "content": turn[key]} for turn in original["history"]
                    for role, key in (("user", "user"), ("assistant", "bot"))]
        assert converted["messages"] == expected
        assert converted["id"] == f"{original['task']}-{original['id']}"
