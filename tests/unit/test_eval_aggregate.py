"""The report's numbers against hand calculations on fixed judge replies.

Fixed replies (benchmark ``turns``, mean aggregation), three dialogues of three turns:

    d1 (category a): 8, 6, 4
    d2 (category a): 10, 7, "I cannot decide."   → turn 3 is a judge failure (no [[rating]])
    d3 (category b): 6, 5, 1

Per turn (one score per dialogue, SE = s/√n):
    turn 1: 8, 10, 6 → mean 8;   s² = (0 + 4 + 4)/2 = 4    → SE = 2/√3 = 1.1547
    turn 2: 6, 7, 5  → mean 6;   s² = (0 + 1 + 1)/2 = 1    → SE = 1/√3 = 0.5774
    turn 3: 4, 1     → mean 2.5; s² = (2.25 + 2.25)/1 = 4.5 → SE = √4.5/√2 = 1.5

Category a (all judged turns of d1 and d2, SE clustered by dialogue):
    8, 6, 4, 10, 7 → mean 35/5 = 7; residual sums per dialogue: d1 1 − 1 − 3 = −3, d2 3 + 0 = 3
    SE = √(2/1 · (9 + 9)) / 5 = 6/5 = 1.2
Category b: 6, 5, 1 → mean 4, one dialogue → no SE.
Overall: 8, 6, 4, 10, 7, 6, 5, 1 → mean 47/8 = 5.875; residual sums: d1 0.375, d2 5.25, d3 −5.625
    SE = √(3/2 · (0.140625 + 27.5625 + 31.640625)) / 8 = √89.015625 / 8 = 1.17935
Failed judgements: 1 (judge).
"""

from __future__ import annotations

import math

import pytest

from turnwise.eval.aggregate import clustered_stat, plain_stat, summarize_single
from turnwise.eval.answer import AnswerConfig
from turnwise.eval.items import EvalItem
from turnwise.eval.judge import EvalJudgeConfig
from turnwise.eval.pipeline import run_eval
from turnwise.eval.report import build_report, markdown, sample_rows
from turnwise.eval.scripted import ScriptedEvalJudge
from turnwise.judge.core import Judge, RetryPolicy
from turnwise.records import RecordStore, read_stage_output
from turnwise.testing.fake import FakeChatModel

REPLIES = {"d1": [8, 6, 4], "d2": [10, 7, "I cannot decide."], "d3": [6, 5, 1]}
CATEGORY = {"d1": "a", "d2": "a", "d3": "b"}


def items() -> list[EvalItem]:
    return [EvalItem(d, "turns", CATEGORY[d], [f"{d}: first question?", "second?", "third?"], [1, 2, 3])
            for d in REPLIES]


async def judged(tmp_path) -> list[dict]:
    table = {f"{d}: first question?": replies for d, replies in REPLIES.items()}
    judge = Judge(FakeChatModel(ScriptedEvalJudge(table=table).reply, model="scripted"), RetryPolicy(attempts=2))
    with RecordStore(tmp_path / "a.jsonl") as answers, RecordStore(tmp_path / "j.jsonl") as judgements:
        await run_eval(items(), FakeChatModel(model="m"), judge, answers, judgements, AnswerConfig(name="m"),
                       EvalJudgeConfig())
    return read_stage_output(tmp_path / "j.jsonl")


async def test_mean_per_turn_per_category_and_overall_match_the_hand_calculation(tmp_path) -> None:
    [summary] = build_report(await judged(tmp_path))["single"]
    turns = summary["turns"]
    assert (turns[1]["mean"], turns[1]["n"]) == (8.0, 3) and turns[1]["se"] == pytest.approx(2 / math.sqrt(3))
    assert turns[2]["mean"] == 6.0 and turns[2]["se"] == pytest.approx(1 / math.sqrt(3))
    assert (turns[3]["mean"], turns[3]["n"]) == (2.5, 2) and turns[3]["se"] == pytest.approx(1.5)
    a, b = summary["categories"]["a"], summary["categories"]["b"]
    assert (a["mean"], a["n"]) == (7.0, 5) and a["se"] == pytest.approx(1.2)
    assert (b["mean"], b["n"], b["se"]) == (4.0, 3, None)
    overall = summary["overall"]
    assert (overall["mean"], overall["n"]) == (5.875, 8) and overall["se"] == pytest.approx(1.17935, abs=1e-5)
    assert summary["failed"] == {"answer": 0, "judge": 1, "total": 1}
    assert (summary["dialogues"], summary["judged"]) == (3, 9)


async def test_markdown_and_samples_show_the_same_numbers(tmp_path) -> None:
    records = await judged(tmp_path)
    text = markdown(build_report(records))
    assert "| turn 1 | 8.00 ± 1.15 (n=3) |" in text
    assert "| turn 3 | 2.50 ± 1.50 (n=2) |" in text
    assert "| a | 7.00 ± 1.20 (n=5) |" in text and "| b | 4.00 (n=3) |" in text
    assert "| **overall** | 5.88 ± 1.18 (n=8) |" in text
    assert "| failed judgements | 1 (judge 1) |" in text
    rows = list(sample_rows(records))
    assert len(rows) == 9
    failed = next(r for r in rows if r.get("failure"))
    assert (failed["id"], failed["turn"], failed["score"]) == ("d2", 3, None)
    assert failed["answer"] == "answer to: third?" and "no [[rating]]" in failed["reason"]


def test_mt_bench_101_scores_the_minimum_turn_then_averages_tasks() -> None:
    """AR: dialogue minima 5 and 9 → mean 7, s² = (4 + 4)/1 = 8, SE = √8/√2 = 2.
    GR: minima 4 and 6 (a third dialogue has a failed turn: left out) → mean 5, s² = 2, SE = 1.
    Overall: (7 + 5)/2 = 6, SE = √(2² + 1²)/2 = √5/2 = 1.1180."""

    def record(id: str, task: str, scores: list) -> dict:
        entries = [{"turn": k, "score": s} if s is not None else {"turn": k, "score": None, "failure": "judge",
                                                                  "reason": "x"} for k, s in scores]
        return {"id": id, "status": "ok", "mode": "single", "benchmark": "mt-bench-101", "category": task,
                "model": "m", "judge": "j", "scores": entries}

    records = [record("AR-1", "AR", [(2, 7), (3, 5)]), record("AR-2", "AR", [(2, 9)]),
               record("GR-1", "GR", [(1, 4), (2, 6)]), record("GR-2", "GR", [(1, 6), (2, 10)]),
               record("GR-3", "GR", [(1, 8), (2, None)])]
    summary = summarize_single(records)
    assert summary["aggregate"] == "min"
    assert summary["categories"]["AR"] == {"mean": 7.0, "se": pytest.approx(2.0), "n": 2}
    assert summary["categories"]["GR"] == {"mean": 5.0, "se": pytest.approx(1.0), "n": 2}
    assert summary["overall"]["mean"] == 6.0 and summary["overall"]["se"] == pytest.approx(math.sqrt(5) / 2)
    assert summary["turns"][2]["mean"] == pytest.approx((7 + 9 + 6 + 10) / 4)  # the curve still uses every turn
    assert summary["failed"]["judge"] == 1
    assert list(summary["categories"]) == ["AR", "GR"]


def test_stat_helpers_edge_cases() -> None:
    assert plain_stat([]) == {"mean": None, "se": None, "n": 0}
    assert plain_stat([3.0]) == {"mean": 3.0, "se": None, "n": 1}
    assert clustered_stat([[1.0], [3.0]]) == plain_stat([1.0, 3.0])  # one value per cluster: the usual s/√n
    assert clustered_stat([[], [2.0, 4.0]]) == {"mean": 3.0, "se": None, "n": 2}
