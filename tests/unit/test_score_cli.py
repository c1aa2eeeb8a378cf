"""`turnwise score` and `turnwise bestofn`: bad settings fail before anything is written; checks need no judge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turnwise.cli.main import main
from turnwise.records import read_stage_output

ROWS = [
    {"id": "1", "messages": [{"role": "user", "content": "6x7?"}, {"role": "assistant", "content": "It is 42."}],
     "meta": {"reference": "42"}},
    {"id": "2", "messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "5"}],
     "meta": {"reference": "4"}},
]


def run(*args: object) -> int:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code or 0


@pytest.fixture
def answers(tmp_path: Path) -> Path:
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    return path


def test_checks_score_without_a_judge(answers: Path, tmp_path: Path) -> None:
    out = tmp_path / "scored.jsonl"
    assert run("score", answers, out, "--scorer", "numeric") == 0
    assert [r["results"][0]["total"] for r in read_stage_output(out)] == [10.0, 0.0]
    manifest = json.loads((tmp_path / "scored.manifest.json").read_text(encoding="utf-8"))
    assert manifest["config"]["scorer"]["name"] == "numeric" and manifest["runs"][-1]["status"] == "complete"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scorer", "bleu"], "unknown scorer 'bleu'"),
        (["--scorer", "exact=0"], "the weight must be positive"),
        (["--dimensions", "helpfulness,style"], "unknown LongReward dimensions ['style']"),
        (["--retriever", "sparse"], "settings.retriever: expected one of dense, bm25"),
        ([], "longreward needs a judge model (--judge-model"),
    ],
)
def test_bad_settings_stop_before_any_output(answers: Path, tmp_path: Path, capsys, args, message) -> None:
    judge = ["--judge-model", "j"] if args else []
    assert run("score", answers, tmp_path / "scored.jsonl", *judge, *args) == 2
    assert message in capsys.readouterr().err
    assert not list(tmp_path.glob("scored*"))
    assert run("bestofn", answers, tmp_path / "pairs.jsonl", "--model", "m", *judge, *args) == 2
    assert not list(tmp_path.glob("pairs*"))
