"""Report files: several models side by side, plots with ids and series colours, the pipeline's resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turnwise.errors import InputError
from turnwise.eval.answer import AnswerConfig
from turnwise.eval.items import EvalItem
from turnwise.eval.judge import EvalJudgeConfig
from turnwise.eval.pipeline import run_eval
from turnwise.eval.plots import PALETTE, Series, radar, turn_curve
from turnwise.eval.report import load_records, write_report
from turnwise.eval.scripted import ScriptedEvalJudge
from turnwise.judge.core import Judge, RetryPolicy
from turnwise.records import RecordStore, read_stage_output
from turnwise.testing.fake import FakeChatModel

CATEGORIES = ["writing", "math", "stem"]


def items(n: int = 6) -> list[EvalItem]:
    return [EvalItem(str(i), "mt-bench", CATEGORIES[i % 3], [f"q{i}?", "and then?", "why?"], [1, 2, 3])
            for i in range(n)]


async def evaluate(tmp_path: Path, name: str, rate, model=None, judge_model=None) -> Path:
    judge = Judge(judge_model or FakeChatModel(ScriptedEvalJudge(rate=rate).reply, model="scripted"),
                  RetryPolicy(attempts=1))
    out = tmp_path / name
    with RecordStore(out / "answers.jsonl") as answers, RecordStore(out / "judgements.jsonl") as judgements:
        await run_eval(items(), model or FakeChatModel(model=name), judge, answers, judgements,
                       AnswerConfig(name=name), EvalJudgeConfig())
    return out / "judgements.jsonl"


async def test_two_models_side_by_side_in_every_output(tmp_path: Path) -> None:
    files = [await evaluate(tmp_path, "alpha", lambda p: 10 - 2 * p.turn),
             await evaluate(tmp_path, "beta", lambda p: 5.0)]
    paths = write_report(load_records(files), tmp_path / "report", title="two models")
    report = json.loads(paths["report.json"].read_text())
    assert [(s["model"], s["overall"]["mean"]) for s in report["single"]] == [("alpha", 6.0), ("beta", 5.0)]
    assert report["single"][0]["turns"]["3"]["mean"] == 4.0
    assert "| | alpha | beta |".replace(" ", "") in paths["report.md"].read_text().replace(" ", "")
    assert sum(1 for _ in paths["samples.jsonl"].open()) == 2 * 6 * 3
    html = paths["report.html"].read_text()
    assert '<svg id="turns-mt-bench"' in html and '<svg id="radar-mt-bench"' in html
    assert html.count('class="series" data-label="alpha"') == 2 and PALETTE[0] in html and PALETTE[1] in html
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_plots_draw_each_series_in_its_colour() -> None:
    series = [Series("a<b", "#1f77b4", {1: (8.0, 0.5), 2: (6.5, None)}), Series("c", "#d62728", {1: (None, None)})]
    svg = turn_curve(series, svg_id="t")
    assert svg.startswith('<svg id="t"') and "a&lt;b" in svg
    assert svg.count('fill="#1f77b4"') == 2 and 'stroke="#1f77b4"' in svg
    assert 'fill="#d62728"' not in svg  # no points to draw
    spider = radar([Series("a", "#2ca02c", {"x": (5.0, None), "y": (10.0, None), "z": (0.0, None)})], svg_id="r")
    assert spider.count('<circle') == 3 and 'fill-opacity="0.12"' in spider


async def test_run_eval_resumes_judging_from_stored_answers(tmp_path: Path) -> None:
    first = FakeChatModel(model="m")
    failing_judge = FakeChatModel(lambda m: None, model="scripted")
    await evaluate(tmp_path, "m", None, model=first, judge_model=failing_judge)
    judgements = tmp_path / "m" / "judgements.jsonl"
    assert {r["status"] for r in read_stage_output(judgements)} == {"failed"}
    second = FakeChatModel(model="m")
    judge = Judge(FakeChatModel(ScriptedEvalJudge(default=7).reply, model="scripted"), RetryPolicy(attempts=1))
    with RecordStore(tmp_path / "m" / "answers.jsonl") as answers, \
            RecordStore(judgements, retry_failed=True) as store:
        totals = await run_eval(items(), second, judge, answers, store, AnswerConfig(name="m"), EvalJudgeConfig())
    assert second.seen == [] and totals.answer.records == 0 and totals.judge.records == 6
    assert {r["status"] for r in read_stage_output(judgements)} == {"ok"}


def test_report_refuses_files_that_are_not_judgements(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    path.write_text(json.dumps({"id": "1", "status": "ok", "answers": []}) + "\n")
    with pytest.raises(InputError, match="not an eval judgement"):
        load_records([path])
