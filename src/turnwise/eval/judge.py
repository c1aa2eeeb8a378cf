"""Grade every judged turn of every answered dialogue: the core of `turnwise eval judge`.

    turnwise eval judge answers.jsonl judgements.jsonl --judge-model gpt-4o --judge-base-url ...

For turn k the judge sees the dialogue up to k (the model's own answers, or the gold history and the
model's answer to k) and the reference answers up to k where there are any, and is told to grade the
answer to question k (template ``eval/single``, English or Chinese). The reply must end with a
``[[rating]]`` from 1 to 10 (:func:`turnwise.judge.parse.parse_rating`, strict); a reply without one is
asked again (:func:`turnwise.judge.core.ask_judge`), and after the last attempt the turn is kept as a
failure with every raw reply and the reason: never a made-up score.

Each dialogue becomes one record: ``scores`` holds one entry per judged turn, ``{"turn", "score",
"attempts", "text"}`` or ``{"turn", "score": null, "failure": "judge"|"answer", "reason", "raw", ...}``;
the record is ``failed`` when any turn has no score.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from turnwise.eval.answer import StageTotals
from turnwise.eval.items import EvalItem
from turnwise.judge.core import Judge
from turnwise.judge.replies import rating_reply
from turnwise.prompts import resolve_lang
from turnwise.records import RecordStore, make_record
from turnwise.stage.runner import Cost, run_bounded


@dataclass(frozen=True)
class EvalJudgeConfig:
    """How the evaluation judge is asked.

    Attributes:
        lang: judge prompt language: ``auto`` (from the dialogue's first turn), ``en`` or ``zh``.
        single_template: the single-answer grading template (``NAME`` of ``NAME.LANG.jinja``).
        pairwise_template: the pairwise comparison template.
        low: lowest valid rating (MT-Bench: 1).
        high: highest valid rating (MT-Bench: 10).
        keep_text: keep the judge's explanation of each verdict in the records.
    """

    lang: str = "auto"
    single_template: str = "eval/single"
    pairwise_template: str = "eval/pairwise"
    low: float = 1.0
    high: float = 10.0
    keep_text: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"lang": self.lang, "single_template": self.single_template,
                "pairwise_template": self.pairwise_template, "low": self.low, "high": self.high}


def shown_answers(item: EvalItem, answers: list[str | None], turn: int) -> list[str | None]:
    """The assistant turns the judge sees up to ``turn``: the model's own, or the gold history then the model's."""
    if item.history == "gold":
        return [*(item.gold or [])[: turn - 1], answers[turn - 1]]
    return list(answers[:turn])


def prompt_variables(item: EvalItem, turn: int) -> dict[str, Any]:
    """Template variables shared by single and pairwise judging of ``turn``."""
    return {
        "turn": turn,
        "questions": item.turns[:turn],
        "references": item.references[:turn] if item.references else None,
        "gold_history": item.history == "gold",
        "focus": item.category if item.benchmark == "mt-bench-101" else None,
    }


def missing_answer(turn: int, reason: str | None) -> dict[str, Any]:
    """The entry of a judged turn that has no answer to judge."""
    return {"turn": turn, "score": None, "failure": "answer", "reason": f"no answer ({reason or 'not answered'})"}


async def grade_turn(judge: Judge, item: EvalItem, answers: list[str | None], turn: int, config: EvalJudgeConfig,
                     answer_reason: str | None = None) -> tuple[dict[str, Any], Cost]:
    """Ask for the rating of one turn; return its entry and what it cost."""
    shown = shown_answers(item, answers, turn)
    if any(a is None for a in shown):
        return missing_answer(turn, answer_reason), Cost()
    lang = resolve_lang(config.lang, item.turns[0])
    if item.benchmark == "multichallenge":  # a YES/NO rubric question about the final response
        from turnwise.eval.multichallenge import rubric_entry

        return await rubric_entry(judge, item, shown[-1], turn, lang, config.keep_text)  # type: ignore[arg-type]
    messages = judge.messages(config.single_template, lang, answers=shown, **prompt_variables(item, turn))
    verdict = await judge.ask_messages(messages, rating_reply(config.low, config.high), lang)
    entry: dict[str, Any] = {"turn": turn, "score": verdict.value, "attempts": verdict.attempts}
    if verdict.ok:
        if config.keep_text:
            entry["text"] = verdict.text
    else:
        entry.update(failure="judge", **verdict.failure())
    return entry, verdict.cost


def failure_reason(entries: list[dict[str, Any]]) -> str | None:
    """One line naming the turns without a verdict and why, or None when every turn has one."""
    failed = [e for e in entries if e.get("failure")]
    if not failed:
        return None
    shown = "; ".join(f"turn {e['turn']}: {e['reason']}" for e in failed[:3])
    return shown + (f"; and {len(failed) - 3} more" if len(failed) > 3 else "")


async def grade_record(answer_record: dict[str, Any], judge: Judge, config: EvalJudgeConfig) -> dict[str, Any]:
    """Grade every judged turn of one answer record (all at once); return the judgement record."""
    item = EvalItem.from_record(answer_record)
    answers = answer_record["answers"]
    results = await asyncio.gather(*(grade_turn(judge, item, answers, k, config, answer_record.get("reason"))
                                     for k in item.judged))
    cost = Cost()
    for _, spent in results:
        cost += spent
    entries = [entry for entry, _ in results]
    reason = failure_reason(entries)
    payload = {"mode": "single", "benchmark": item.benchmark, "category": item.category,
               "model": answer_record["meta"].get("name", "model"), "judge": judge.model.model,
               "turns": item.turns, "answers": answers, "scores": entries}
    template = "eval/rubric" if item.benchmark == "multichallenge" else config.single_template
    meta = {"cost": cost.to_dict(), "lang": resolve_lang(config.lang, item.turns[0]), "template": template,
            **{k: answer_record["meta"][k] for k in ("item", "attempt") if k in answer_record["meta"]}}
    return make_record(item.id, "failed" if reason else "ok", payload, reason=reason, meta=meta)


async def run_judge(
    answer_records: Iterable[dict[str, Any]],
    judge: Judge,
    store: RecordStore,
    config: EvalJudgeConfig,
    *,
    max_in_flight: int = 64,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> StageTotals:
    """Grade every answer record not yet in ``store``; each judgement is written as soon as it is done.

    Args:
        answer_records: what `eval answer` wrote (ok and failed records alike: answered turns are graded).
        judge: the judge model (behind the response cache in the CLI) and its retry policy.
        store: the resumable output; finished ids are skipped.
        config: language, templates, rating range.
        max_in_flight: dialogues judged at once (each sends all its turns at once).
        on_record: called with each record written.
    """
    totals = StageTotals()

    async def work(record: dict[str, Any]) -> None:
        judgement = await grade_record(record, judge, config)
        store.append(judgement)
        totals.add(judgement)
        if on_record is not None:
            on_record(judgement)

    todo = (r for r in answer_records if r["id"] not in store.done)
    await run_bounded(todo, work, max_in_flight)
    return totals
