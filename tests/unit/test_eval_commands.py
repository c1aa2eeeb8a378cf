"""`turnwise eval` commands without a model: the scripted judge backend plays the answerer and the judge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turnwise.cli.main import main

SCRIPTED = "turnwise.eval.scripted:ScriptedEvalJudgeModel"


def run(*args: object) -> int:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code or 0


@pytest.fixture
def dialogues(tmp_path: Path) -> Path:
    path = tmp_path / "dialogues.jsonl"
    rows = [{"id": f"d{i}", "category": "travel" if i % 2 else "food",
             "turns": [f"[{i}] Plan a day in Kyoto.", "Make it cheaper.", "And the museum?"]} for i in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def eval_run(dialogues: Path, out: Path, name: str, *extra: object) -> int:
    return run("eval", "run", dialogues, out, "--model", f"{name}=scripted", "--backend", SCRIPTED, "--judge-model",
               "judge", "--judge-backend", SCRIPTED, "--no-cache", *extra)


def test_run_writes_answers_judgements_and_the_report(dialogues: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert eval_run(dialogues, out, "demo") == 0
    printed = capsys.readouterr().out
    assert "### turns: single-answer grading" in printed and "| turn 3 |" in printed and "| demo |" in printed
    for name in ("answers-demo.jsonl", "answers-demo.manifest.json", "judgements-demo.jsonl",
                 "judgements-demo.manifest.json", "report/report.json", "report/report.md", "report/samples.jsonl",
                 "report/report.html"):
        assert (out / name).is_file(), name
    manifest = json.loads((out / "judgements-demo.manifest.json").read_text())
    assert manifest["runs"][-1]["status"] == "complete" and manifest["counts"] == {"ok": 4}
    assert eval_run(dialogues, out, "demo") == 0  # resumes: nothing left to do
    assert len((out / "judgements-demo.jsonl").read_text().splitlines()) == 4


def test_answers_of_another_model_are_not_resumed(dialogues: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert eval_run(dialogues, out, "First") == 0
    assert eval_run(dialogues, out, "first") == 2  # the same file name, another model
    assert "holds answers of First, not first" in capsys.readouterr().err
    assert eval_run(dialogues, out, "second") == 0  # another model beside it
    assert {p.name for p in out.glob("answers-*.jsonl")} == {"answers-first.jsonl", "answers-second.jsonl"}


def test_judge_refuses_files_that_are_not_answers(dialogues: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "records.jsonl"
    bad.write_text(json.dumps({"id": "x", "status": "ok", "messages": []}) + "\n")
    code = run("eval", "judge", bad, tmp_path / "j.jsonl", "--judge-model", "j", "--judge-backend", SCRIPTED)
    assert code == 2 and "not an eval answer record" in capsys.readouterr().err
    code = run("eval", "judge", bad, tmp_path / "j.jsonl", "--judge-model", "j", "--lang", "fr")
    assert code == 2 and "no prompts in 'fr'" in capsys.readouterr().err


def test_answer_then_judge_in_steps_and_a_pairwise_report(dialogues: Path, tmp_path: Path, capsys) -> None:
    answers = tmp_path / "answers.jsonl"
    assert run("eval", "answer", dialogues, answers, "--model", "m", "--backend", SCRIPTED, "--no-cache") == 0
    pairs = tmp_path / "pairs.jsonl"
    assert run("eval", "judge", answers, pairs, "--baseline", answers, "--judge-model", "j", "--judge-backend",
               SCRIPTED, "--no-cache") == 0
    assert run("eval", "report", pairs, "--out", tmp_path / "report") == 0
    printed = capsys.readouterr().out
    assert "pairwise, both orders" in printed and "| **overall** | 50.0% ± 0.0 (0/12/0) |" in printed
