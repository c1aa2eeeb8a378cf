"""Answer and judge in one pass, dialogue by dialogue: the core of `turnwise eval run`.

    turnwise eval run question.jsonl runs/eval/qwen --model ... --judge-model ...

Two global phases (answer everything, then judge everything) leave the servers half idle at the end of
each phase. Here each dialogue is answered and then judged on its own async task, so the judge's calls
for early dialogues overlap the answering of later ones and the whole run stays close to the bound set
by the servers' capacity (``bench/eval_overhead.py`` measures it). Both outputs are the same resumable
record files that `eval answer` and `eval judge` write: a dialogue answered in an earlier run is judged
from its stored record, one judged already is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from turnwise.eval.answer import AnswerConfig, StageTotals, answer_item
from turnwise.eval.items import EvalItem
from turnwise.eval.judge import EvalJudgeConfig, grade_record
from turnwise.judge.core import Judge
from turnwise.models.base import ChatModel
from turnwise.records import RecordStore, read_stage_output
from turnwise.stage.runner import run_bounded, unfinished

Callback = Callable[[dict[str, Any]], None]


@dataclass
class EvalTotals:
    """What one run answered and judged, and what each cost (this run only)."""

    answer: StageTotals = field(default_factory=StageTotals)
    judge: StageTotals = field(default_factory=StageTotals)

    def to_dict(self) -> dict[str, Any]:
        return {"answer": {"records": self.answer.records, **self.answer.cost.to_dict()},
                "judge": {"records": self.judge.records, **self.judge.cost.to_dict()}}


def stored(store: RecordStore) -> dict[str, dict[str, Any]]:
    """The records already in a store's file, by id."""
    return {r["id"]: r for r in read_stage_output(store.path)} if store.path.exists() else {}


async def run_eval(
    items: Iterable[EvalItem],
    model: ChatModel,
    judge: Judge,
    answers: RecordStore,
    judgements: RecordStore,
    answer_config: AnswerConfig,
    judge_config: EvalJudgeConfig,
    *,
    max_in_flight: int = 256,
    on_answer: Callback | None = None,
    on_judgement: Callback | None = None,
) -> EvalTotals:
    """Answer (unless stored) and judge (unless stored) every dialogue, each on its own task.

    Args:
        items: the benchmark's dialogues.
        model: the evaluated model.
        judge: the judge model and its retry policy.
        answers: resumable answer records (what `eval answer` writes).
        judgements: resumable judgement records (what `eval judge` writes).
        answer_config: sampling settings and the model's name.
        judge_config: judge language, templates and rating range.
        max_in_flight: dialogues in progress at once (the backends bound their own requests).
        on_answer: called with each answer record written.
        on_judgement: called with each judgement record written.
    """
    totals = EvalTotals()
    answered = stored(answers)

    async def work(item: EvalItem) -> None:
        record = answered.get(item.id)
        if record is None:
            record = await answer_item(item, model, answer_config)
            answers.append(record)
            totals.answer.add(record)
            if on_answer is not None:
                on_answer(record)
        judgement = await grade_record(record, judge, judge_config)
        judgements.append(judgement)
        totals.judge.add(judgement)
        if on_judgement is not None:
            on_judgement(judgement)

    await run_bounded(unfinished(items, judgements.done, "dialogue"), work, max_in_flight)
    return totals
