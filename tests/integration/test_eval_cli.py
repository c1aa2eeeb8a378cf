"""`turnwise eval` end to end on the real MT-Bench and MT-Eval files: a tiny local model answers turn by turn,
the scripted judge answers over HTTP from a fixed table of replies, and the report's numbers match a hand
calculation from that table (mean per turn, per category, overall; failures counted, never scored)."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from turnwise.cli.main import main
from turnwise.eval.benchmarks import load_benchmark
from turnwise.eval.scripted import ScriptedEvalJudge
from turnwise.records import read_stage_output
from turnwise.testing.scripted_runner import serve_in_thread
from turnwise.testing.scripted_server import ServerConfig

pytest.importorskip("torch")
pytestmark = pytest.mark.integration

UNPARSEABLE = "The answer is fine, I suppose."


def table_for(first_questions: list[str]) -> dict[str, list]:
    """Dialogue i: rating 1 + (i + k) % 10 at turn k; every 7th dialogue's turn 2 has no [[rating]]."""
    return {q: [UNPARSEABLE if i % 7 == 3 and k == 2 else float(1 + (i + k) % 10) for k in range(1, 6)]
            for i, q in enumerate(first_questions)}


@pytest.fixture(scope="module")
def table(shared_data: Path) -> dict[str, list]:
    return table_for([i.turns[0] for i in load_benchmark(shared_data / "mt_bench" / "question.jsonl")])


@pytest.fixture(scope="module")
def judge_url(table):
    config = ServerConfig(latency_ms=1, jitter_ms=0, script=ScriptedEvalJudge(table=table).server_script)
    with serve_in_thread(config) as server:
        yield server.base_url


def run(*args: object) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    assert exc.value.code in (0, None)


def expected(answers: Path, table: dict[str, list]) -> dict:
    """The report's numbers computed by hand from the answers written and the judge's table."""
    per_turn: dict[int, list[float]] = {}
    per_category: dict[str, list[float]] = {}
    failed = {"answer": 0, "judge": 0}
    for record in read_stage_output(answers):
        for k in record["judged"]:
            entry = table[record["turns"][0]][k - 1]
            if any(a is None for a in record["answers"][:k]):
                failed["answer"] += 1
            elif isinstance(entry, str):
                failed["judge"] += 1
            else:
                per_turn.setdefault(k, []).append(entry)
                per_category.setdefault(record["category"], []).append(entry)
    return {"turns": per_turn, "categories": per_category, "failed": failed,
            "overall": [s for scores in per_turn.values() for s in scores]}


def check_report(out: Path, table: dict[str, list], turns: int, stdout: str) -> None:
    want = expected(out / "answers-tiny.jsonl", table)
    [summary] = json.loads((out / "report" / "report.json").read_text())["single"]
    assert sorted(int(k) for k in summary["turns"]) == list(range(1, turns + 1))
    for k, scores in want["turns"].items():
        got = summary["turns"][str(k)]
        assert got["n"] == len(scores) and got["mean"] == pytest.approx(statistics.mean(scores))
        assert got["se"] == pytest.approx(statistics.stdev(scores) / math.sqrt(len(scores)))
    for name, scores in want["categories"].items():
        assert summary["categories"][name]["mean"] == pytest.approx(statistics.mean(scores))
        assert summary["categories"][name]["n"] == len(scores)
    assert summary["overall"]["mean"] == pytest.approx(statistics.mean(want["overall"]))
    assert summary["failed"] == {**want["failed"], "total": sum(want["failed"].values())}
    assert want["failed"]["judge"] > 0
    assert f"| **overall** | {statistics.mean(want['overall']):.2f} ±" in stdout
    samples = (out / "report" / "samples.jsonl").read_text().splitlines()
    assert len(samples) == sum(len(r["judged"]) for r in read_stage_output(out / "answers-tiny.jsonl"))


def eval_args(data: Path, out: Path, tiny: Path, url: str, cache: Path, *extra: object) -> list[object]:
    return ["eval", "run", data, out, "--model", f"tiny={tiny}", "--backend", "local", "--concurrency", 64,
            "--max-tokens", 4, "--judge-model", "scripted", "--judge-base-url", url, "--judge-attempts", 2,
            "--cache", cache, *extra]


@pytest.fixture(scope="module")
def mt_bench(tiny_model_dir: Path, shared_data: Path, judge_url: str, tmp_path_factory) -> tuple[Path, str]:
    """One `eval run` on all of MT-Bench, shared by the tests below; returns its folder and what it printed."""
    out = tmp_path_factory.mktemp("eval") / "mt-bench"
    cache = out.parent / "cache.sqlite"
    run(*eval_args(shared_data / "mt_bench" / "question.jsonl", out, tiny_model_dir, judge_url, cache))
    return out, (out / "report" / "report.md").read_text()


def test_mt_bench_end_to_end(mt_bench, table) -> None:
    out, report_md = mt_bench
    check_report(out, table, 2, report_md)
    answers = read_stage_output(out / "answers-tiny.jsonl")
    assert len(answers) == 80 and {r["meta"]["temperature"] for r in answers} == {0.0, 0.1, 0.7}
    assert sum(1 for r in answers if r.get("references")) == 30


def test_mt_eval_end_to_end_and_both_in_one_report(mt_bench, tiny_model_dir: Path, shared_data: Path,
                                                    judge_url: str, table, tmp_path: Path, capsys) -> None:
    out = tmp_path / "mt-eval"
    cache = mt_bench[0].parent / "cache.sqlite"  # MT-Eval's first turns are MT-Bench's: answered from the cache
    run(*eval_args(shared_data / "mt_eval" / "mt-bench_extended.jsonl", out, tiny_model_dir, judge_url, cache,
                   "--limit", 12))
    check_report(out, table, 5, capsys.readouterr().out)
    assert len(read_stage_output(out / "judgements-tiny.jsonl")) == 12
    run("eval", "report", mt_bench[0] / "judgements-tiny.jsonl", out / "judgements-tiny.jsonl", "--out",
        tmp_path / "both")
    html = (tmp_path / "both" / "report.html").read_text()
    assert 'id="turns-mt-bench"' in html and 'id="radar-mt-eval"' in html


def test_a_second_run_pays_for_nothing_it_had(mt_bench, tiny_model_dir: Path, shared_data: Path, judge_url: str,
                                              tmp_path: Path) -> None:
    first = read_stage_output(mt_bench[0] / "answers-tiny.jsonl")
    answered = sum(1 for r in first for a in r["answers"] if a is not None)
    again = tmp_path / "again"
    run(*eval_args(shared_data / "mt_bench" / "question.jsonl", again, tiny_model_dir, judge_url,
                   mt_bench[0].parent / "cache.sqlite"))
    cost = json.loads((again / "answers-tiny.manifest.json").read_text())["runs"][-1]["cost"]
    assert cost["cached"] == answered  # an empty answer is never cached: it is asked again


def test_pairwise_judge_and_retry_failed(mt_bench, judge_url: str, tmp_path: Path, capsys) -> None:
    answers = mt_bench[0] / "answers-tiny.jsonl"
    pairs = tmp_path / "pairs.jsonl"
    run("eval", "judge", answers, pairs, "--baseline", answers, "--judge-model", "scripted",
        "--judge-base-url", judge_url, "--no-cache")
    outcomes = [e["outcome"] for r in read_stage_output(pairs) for e in r["outcomes"] if e.get("outcome")]
    assert outcomes and set(outcomes) == {"tie"}  # the same answers on both sides: equal length, [[C]]
    run("eval", "report", pairs, "--out", tmp_path / "pair-report")
    assert "| **overall** | 50.0% ± 0.0" in capsys.readouterr().out
    judgements = tmp_path / "judgements.jsonl"
    judgements.write_bytes((mt_bench[0] / "judgements-tiny.jsonl").read_bytes())
    before = read_stage_output(judgements)
    run("eval", "judge", answers, judgements, "--judge-model", "scripted", "--judge-base-url", judge_url,
        "--judge-attempts", 2, "--retry-failed", "--no-cache")
    after = read_stage_output(judgements)
    assert len(after) == len(before) == 80  # the failed records were tried again, none duplicated
    failed = sorted(r["id"] for r in before if r["status"] == "failed")
    assert failed and sorted(r["id"] for r in after if r["status"] == "failed") == failed  # the table fails them again
