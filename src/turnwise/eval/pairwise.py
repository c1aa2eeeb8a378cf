"""Compare a model with a baseline turn by turn, with both orders: the pairwise mode of `turnwise eval judge`.

    turnwise eval judge answers.jsonl pairs.jsonl --baseline baseline_answers.jsonl --judge-model ...

Every judged turn is shown to the judge twice (template ``eval/pairwise``): once with the model as
assistant A, once with the baseline as A. The judge's ``[[A]]``/``[[B]]``/``[[C]]`` is parsed strictly.
Following FastChat's MT-Bench pairwise protocol, the two verdicts are mapped back to the models: when
they agree, that is the outcome; when they disagree (the judge preferred a *position*, not an answer),
the outcome is a tie and the turn is marked ``consistent: false``. So a judge that always says ``[[A]]``
yields only ties.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from turnwise.eval.answer import StageTotals
from turnwise.eval.items import EvalItem
from turnwise.eval.judge import EvalJudgeConfig, failure_reason, missing_answer, prompt_variables, shown_answers
from turnwise.judge.core import Judge
from turnwise.judge.parse import parse_label
from turnwise.judge.replies import ANALYSIS, Reply, json_object
from turnwise.prompts import resolve_lang
from turnwise.records import RecordStore, make_record
from turnwise.stage.runner import Cost, run_bounded

VERDICTS = {"A": 1.0, "B": -1.0, "C": 0.0, "tie": 0.0}
OUTCOMES = ("model", "baseline", "tie")


def parse_verdict(text: str) -> str:
    """``A``, ``B`` or ``C`` from the last ``[[…]]`` of a reply (``[[tie]]`` reads as C); ParseError otherwise."""
    label, _ = parse_label(text, VERDICTS)
    return "C" if label == "tie" else label


VERDICT = Reply(parse_verdict, json_object({"analysis": ANALYSIS,
                                            "verdict": {"type": "string", "enum": ["A", "B", "C"]}}),
                lambda value: parse_verdict(f"[[{value.get('verdict')}]]"),
                '{"analysis": "...", "verdict": "A" | "B" | "C"}')


def combine(model_first: str, baseline_first: str) -> tuple[str, bool]:
    """The outcome of a turn from the verdict with the model as A and the verdict with the baseline as A.

    Returns:
        ``(outcome, consistent)``: ``model``, ``baseline`` or ``tie``; disagreeing orders give a tie.
    """
    first = {"A": "model", "B": "baseline", "C": "tie"}[model_first]
    second = {"A": "baseline", "B": "model", "C": "tie"}[baseline_first]
    return (first, True) if first == second else ("tie", False)


async def compare_turn(judge: Judge, item: EvalItem, model_answers: list, baseline_answers: list, turn: int,
                       config: EvalJudgeConfig) -> tuple[dict[str, Any], Cost]:
    """Ask for both orders of one turn; return its entry and what it cost."""
    ours, theirs = shown_answers(item, model_answers, turn), shown_answers(item, baseline_answers, turn)
    if any(a is None for a in ours + theirs):
        side = "model" if any(a is None for a in ours) else "baseline"
        return missing_answer(turn, f"the {side} did not answer"), Cost()
    lang = resolve_lang(config.lang, item.turns[0])
    variables = prompt_variables(item, turn)
    orders = [(ours, theirs), (theirs, ours)]
    verdicts = await asyncio.gather(*(
        judge.ask_messages(judge.messages(config.pairwise_template, lang, answers_a=a, answers_b=b, **variables),
                           VERDICT, lang) for a, b in orders))
    cost = Cost()
    for verdict in verdicts:
        cost += verdict.cost
    entry: dict[str, Any] = {"turn": turn, "verdicts": [v.value for v in verdicts],
                             "attempts": [v.attempts for v in verdicts]}
    failed = [v for v in verdicts if not v.ok]
    if failed:
        entry.update(outcome=None, failure="judge", reason=failed[0].reason, raw=[v.raw for v in verdicts])
        return entry, cost
    entry["outcome"], entry["consistent"] = combine(verdicts[0].value, verdicts[1].value)  # type: ignore[arg-type]
    if config.keep_text:
        entry["texts"] = [v.text for v in verdicts]
    return entry, cost


async def compare_record(model_record: dict[str, Any], baseline_record: dict[str, Any] | None, judge: Judge,
                         config: EvalJudgeConfig) -> dict[str, Any]:
    """Compare one dialogue's judged turns (all at once); return the pairwise record."""
    item = EvalItem.from_record(model_record)
    base = {"mode": "pairwise", "benchmark": item.benchmark, "category": item.category,
            "model": model_record["meta"].get("name", "model"), "judge": judge.model.model}
    meta: dict[str, Any] = {"cost": Cost().to_dict(), "template": config.pairwise_template}
    if baseline_record is None or baseline_record["turns"] != item.turns:
        why = "the baseline has no answers to this dialogue" if baseline_record is None else \
            "the baseline answered different questions under this id"
        return make_record(item.id, "failed", {**base, "baseline": None, "outcomes": []}, reason=why, meta=meta)
    results = await asyncio.gather(*(
        compare_turn(judge, item, model_record["answers"], baseline_record["answers"], k, config)
        for k in item.judged))
    cost = Cost()
    for _, spent in results:
        cost += spent
    entries = [entry for entry, _ in results]
    reason = failure_reason(entries)
    payload = {**base, "baseline": baseline_record["meta"].get("name", "baseline"), "turns": item.turns,
               "outcomes": entries}
    meta.update(cost=cost.to_dict(), lang=resolve_lang(config.lang, item.turns[0]))
    return make_record(item.id, "failed" if reason else "ok", payload, reason=reason, meta=meta)


async def run_pairwise(
    model_records: Iterable[dict[str, Any]],
    baseline_records: dict[str, dict[str, Any]],
    judge: Judge,
    store: RecordStore,
    config: EvalJudgeConfig,
    *,
    max_in_flight: int = 64,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> StageTotals:
    """Compare every dialogue of the model with the baseline's answer to it (by id), resumably.

    Args:
        model_records: the evaluated model's answer records.
        baseline_records: the baseline's answer records by id.
        judge: the judge model and its retry policy.
        store: the resumable output; finished ids are skipped.
        config: language and templates.
        max_in_flight: dialogues compared at once.
        on_record: called with each record written.
    """
    totals = StageTotals()

    async def work(record: dict[str, Any]) -> None:
        result = await compare_record(record, baseline_records.get(record["id"]), judge, config)
        store.append(result)
        totals.add(result)
        if on_record is not None:
            on_record(result)

    await run_bounded((r for r in model_records if r["id"] not in store.done), work, max_in_flight)
    return totals
