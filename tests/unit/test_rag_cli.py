"""`turnwise rag index|batch|chat` and `turnwise rewrite [run]|eval` with the scripted backend and a BM25 index."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from turnwise.cli.main import main
from turnwise.records import read_stage_output

SCRIPTED = "turnwise.rag.scripted:ScriptedRagModel"
CORPUS = [
    {"id": "nile", "title": "Nile", "text": "The Nile is about 6,650 km long. It flows into the Mediterranean Sea."},
    {"id": "lyon", "title": "Lyon", "text": "Lyon had about 522,000 inhabitants in 2020."},
]
CONVERSATIONS = [
    {"id": "c1", "messages": [{"role": "user", "content": "What is the Nile?"}], "followups": ["How long is it?"]},
    {"id": "c2", "messages": [{"role": "user", "content": "Where is Lyon?"},
                              {"role": "assistant", "content": "France."},
                              {"role": "user", "content": "How many people live there?"}]},
]


def run(*args: object) -> int:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    return exc.value.code or 0


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def index(tmp_path: Path) -> Path:
    out = tmp_path / "index"
    assert run("rag", "index", jsonl(tmp_path / "corpus.jsonl", CORPUS), out, "--kind", "bm25",
               "--chunk-tokens", 32) == 0
    return out


def test_index_is_written_once(index: Path, tmp_path: Path) -> None:
    meta = json.loads((index / "index.json").read_text())
    assert meta["documents"] == 2 and meta["settings"]["kind"] == "bm25"
    assert run("rag", "index", tmp_path / "corpus.jsonl", index, "--kind", "bm25") == 2


def test_batch(index: Path, tmp_path: Path) -> None:
    out = tmp_path / "answers.jsonl"
    args = ("rag", "batch", jsonl(tmp_path / "convs.jsonl", CONVERSATIONS), out, "--index", index,
            "--model", "scripted", "--backend", SCRIPTED, "--cache", tmp_path / "cache.sqlite")
    assert run(*args) == 0
    records = {r["id"]: r for r in read_stage_output(out)}
    turns = records["c1"]["turns"]
    assert [t["query"] for t in turns] == ["What is the Nile?", "How long is Nile?"]
    assert turns[1]["chunk_ids"][0] == "nile#0" and turns[1]["rewrite"]["status"] == "rewritten"
    assert records["c1"]["messages"][2]["content"] == "How long is it?"
    assert records["c1"]["messages"][3]["content"].startswith("According to the passages: The Nile is about")
    manifest = json.loads((tmp_path / "answers.manifest.json").read_text())
    assert manifest["rewrites"]["rewritten"] == 1 and manifest["runs"][-1]["status"] == "complete"
    assert manifest["config"]["engine"]["rewriter"]["variant"] == "cot"
    assert run(*args) == 0  # resumed: nothing to do
    assert len(read_stage_output(out)) == 2


def test_chat_logs_each_turn(index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("What is the Nile?\n\nHow long is it?\n/reset\nHi\n/exit\nnot read\n"))
    log = tmp_path / "chat.jsonl"
    assert run("rag", "chat", "--index", index, "--model", "scripted", "--backend", SCRIPTED, "--log", log,
               "--system", "Be brief.", "--no-cache") == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(line["turn"], line["query"]) for line in lines] == [(1, "What is the Nile?"), (3, "How long is Nile?"),
                                                                (1, "Hi")]
    assert lines[1]["chunk_ids"][0] == "nile#0" and lines[1]["rewrite"]["gate"]["reason"] == "dependent"
    assert "According to the passages" in capsys.readouterr().out
    assert json.loads((tmp_path / "chat.manifest.json").read_text())["counts"] == {"turns": 3}


CANARD = [
    {"History": ["Walter Scott", "Early days"], "QuAC_dialog_id": "C_1", "Question": "where was he born?",
     "Question_no": 1, "Rewrite": "Where was Walter Scott born?"},
    {"History": ["Walter Scott", "Early days", "where was he born?", "Edinburgh"], "QuAC_dialog_id": "C_1",
     "Question": "What was his first job?", "Question_no": 2, "Rewrite": "What was Walter Scott's first job?"},
]


def test_rewrite_is_run_by_default(tmp_path: Path) -> None:
    data = tmp_path / "canard.json"
    data.write_text(json.dumps(CANARD), encoding="utf-8")
    out = tmp_path / "rewrites.jsonl"
    assert run("rewrite", data, out, "--from", "canard", "--model", "pronouns", "--backend", SCRIPTED,
               "--no-cache") == 0
    records = read_stage_output(out)
    assert [r["query"] for r in records] == ["where was Walter Scott born?", "What was Walter Scott's first job?"]
    assert records[0]["topic"] == "Walter Scott — Early days" and records[1]["needs_rewrite"] is True
    out2 = tmp_path / "again.jsonl"
    assert run("rewrite", "run", data, out2, "--from", "canard", "--model", "pronouns", "--backend", SCRIPTED,
               "--variant", "direct", "--no-cache") == 0
    assert read_stage_output(out2)[1]["raw"] == ["Rewrite: What was Walter Scott's first job?"]


def test_rewrite_eval_with_a_rewriter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sacrebleu")
    data = tmp_path / "canard.json"
    data.write_text(json.dumps(CANARD), encoding="utf-8")
    out = tmp_path / "eval.md"
    assert run("rewrite", "eval", data, out, "--from", "canard", "--model", "pronouns", "--backend", SCRIPTED,
               "--cache", tmp_path / "cache.sqlite") == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2] == "rewriter: rewritten 2, unchanged 0, skipped 0, failed 0 (a failed turn is scored as the " \
                        "question itself)"
    figures = dict(part.split("=") for part in lines[-1].split())
    assert set(figures) == {"baseline_bleu", "baseline_rouge1", "bleu", "rouge1"}
    assert float(figures["rouge1"]) > float(figures["baseline_rouge1"])
    assert out.read_text().splitlines()[-1] == lines[-1]
    report = json.loads((tmp_path / "eval.report.json").read_text())
    assert report["statuses"] == {"rewritten": 2}
    assert len(read_stage_output(tmp_path / "eval.rewrites.jsonl")) == 2  # the rewriter's records, resumable
    assert run("rewrite", "eval", data, out, "--from", "canard", "--model", "x", "--predictions",
               tmp_path / "eval.rewrites.jsonl") == 2
