"""Multi-turn evaluation: answer a benchmark turn by turn, judge every turn, report per turn and category.

    from turnwise.eval import load_benchmark, run_eval, write_report

    items = load_benchmark("question.jsonl")                      # MT-Bench, MT-Eval, MT-Bench-101, N-turn
    await run_eval(items, model, judge, answers, judgements, AnswerConfig(), EvalJudgeConfig())
    write_report(load_records(["judgements.jsonl"]), "report/")   # Markdown, JSON, per-sample JSONL, HTML

Modules: :mod:`~turnwise.eval.items` (what a dialogue to evaluate is), :mod:`~turnwise.eval.benchmarks` and
:mod:`~turnwise.eval.turns_format` (readers), :mod:`~turnwise.eval.answer` (turn-by-turn answering),
:mod:`~turnwise.eval.judge` (single-answer grading), :mod:`~turnwise.eval.pairwise` (both orders),
:mod:`~turnwise.eval.pipeline` (answer and judge in one pass), :mod:`~turnwise.eval.aggregate` (the
numbers), :mod:`~turnwise.eval.report`, :mod:`~turnwise.eval.html` and :mod:`~turnwise.eval.plots` (the
report), :mod:`~turnwise.eval.scripted` (a deterministic judge for tests). See docs/eval.md.
"""

from turnwise.eval.aggregate import summarize_pairwise, summarize_single
from turnwise.eval.answer import MT_BENCH_TEMPERATURES, AnswerConfig, answer_item, run_answer
from turnwise.eval.benchmarks import detect_benchmark, load_benchmark
from turnwise.eval.items import BENCHMARKS, Benchmark, EvalItem
from turnwise.eval.judge import EvalJudgeConfig, grade_record, run_judge
from turnwise.eval.pairwise import combine, compare_record, run_pairwise
from turnwise.eval.pipeline import run_eval
from turnwise.eval.report import build_report, load_records, markdown, write_report
from turnwise.eval.scripted import ScriptedEvalJudge

__all__ = [
    "BENCHMARKS",
    "MT_BENCH_TEMPERATURES",
    "AnswerConfig",
    "Benchmark",
    "EvalItem",
    "EvalJudgeConfig",
    "ScriptedEvalJudge",
    "answer_item",
    "build_report",
    "combine",
    "compare_record",
    "detect_benchmark",
    "grade_record",
    "load_benchmark",
    "load_records",
    "markdown",
    "run_answer",
    "run_eval",
    "run_judge",
    "run_pairwise",
    "summarize_pairwise",
    "summarize_single",
    "write_report",
]
