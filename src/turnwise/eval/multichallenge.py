"""MultiChallenge (Sirdeshmukh et al. 2025, arXiv 2501.17399): a final answer after a given history, judged YES/NO.

    items = load_multichallenge("benchmark_questions.jsonl")           # 273 items, four axes
    answers = read_responses("responses_gpt-4o.jsonl", items)          # the published layout, as answer records
    turnwise eval judge responses_gpt-4o.jsonl judgements.jsonl --judge-model M   # same, from the command line

An item (``QUESTION_ID``, ``AXIS``, ``CONVERSATION``: messages ending with a user turn, ``TARGET_QUESTION``,
``PASS_CRITERIA``) becomes an :class:`EvalItem` with the conversation as its *gold* history and only the last turn
judged. The judge reads the final response alone and answers ``TARGET_QUESTION`` about it (template
``eval/rubric``: the benchmark's own judge prompt) with reasoning and ``[[YES]]``/``[[NO]]``; the attempt passes
when the verdict equals ``PASS_CRITERIA`` (score 1, else 0). A reply without a verdict is asked again and then kept
as a failure with its raw text, never scored.

Several responses per item (the published files hold one each; ``--attempts`` answers N times) are judged one by
one, as records ``QUESTION_ID#k``. :func:`summarize` reports per axis the pass rate over attempts, over items with
*any* attempt passing and with *all* passing, and overall the mean of the four axes (the paper's headline number)
and the share of items.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from turnwise.data.io import iter_records
from turnwise.data.schema import Message, validate_messages
from turnwise.errors import InputError, SchemaError
from turnwise.eval.items import EvalItem
from turnwise.judge.replies import label_reply
from turnwise.records import make_record

NAME = "multichallenge"
AXES = ("INSTRUCTION_RETENTION", "INFERENCE_MEMORY", "RELIABLE_VERSION_EDITING", "SELF_COHERENCE")
QUESTION_KEYS = {"QUESTION_ID", "AXIS", "CONVERSATION"}
RESPONSE_KEYS = {"QUESTION_ID", "RESPONSE"}
VERDICT = label_reply({"YES": 1.0, "NO": 0.0})
TEMPLATE = "eval/rubric"


def is_question(record: dict[str, Any]) -> bool:
    return record.keys() >= QUESTION_KEYS


def is_response(record: dict[str, Any]) -> bool:
    return record.keys() >= RESPONSE_KEYS and "CONVERSATION" not in record


def _text(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise SchemaError(f"'{key}' must be a non-empty string")
    return value


def item_from_record(record: dict[str, Any]) -> EvalItem:
    """One MultiChallenge item (raises SchemaError naming the rule)."""
    qid = record.get("QUESTION_ID")
    if not isinstance(qid, str | int) or isinstance(qid, bool) or not str(qid).strip():
        raise SchemaError("'QUESTION_ID' must be a non-empty string or number")
    messages: list[Message] = record.get("CONVERSATION")  # type: ignore[assignment]
    try:
        validate_messages(messages)
    except SchemaError as exc:
        raise SchemaError(f"CONVERSATION: {exc}") from None
    if messages[-1]["role"] != "user":
        raise SchemaError("CONVERSATION must end with a user turn (the one the model answers)")
    criteria = _text(record, "PASS_CRITERIA").strip().upper()
    if criteria not in ("YES", "NO"):
        raise SchemaError(f"'PASS_CRITERIA' must be YES or NO, got {record['PASS_CRITERIA']!r}")
    system = messages[0]["content"] if messages[0]["role"] == "system" else None
    turns = [m["content"] for m in messages if m["role"] == "user"]
    gold: list[str | None] = [m["content"] for m in messages if m["role"] == "assistant"]
    meta = {"target_question": _text(record, "TARGET_QUESTION"), "pass_criteria": criteria}
    return EvalItem(str(qid), NAME, _text(record, "AXIS"), turns, [len(turns)], history="gold",
                    gold=[*gold, None], system=system, meta=meta)


def load_multichallenge(path: str | Path, limit: int | None = None) -> list[EvalItem]:
    """Every item of ``benchmark_questions.jsonl``; a malformed one raises InputError (file, line, rule)."""
    items, seen = [], set()
    for line, record in iter_records(path):
        try:
            item = item_from_record(record)
        except SchemaError as exc:
            raise InputError(str(path), line, f"{exc} (multichallenge)") from None
        if item.id in seen:
            raise InputError(str(path), line, f"duplicate QUESTION_ID {item.id!r}")
        seen.add(item.id)
        items.append(item)
    return items[:limit] if limit is not None else items


def questions_beside(responses: str | Path) -> Path:
    """Where the benchmark's questions are looked for when not named: ``benchmark_questions.jsonl`` beside the file."""
    return Path(responses).with_name("benchmark_questions.jsonl")


def model_name(path: str | Path) -> str:
    """``responses_qwen2-5_14b.jsonl`` → ``qwen2-5_14b``."""
    stem = Path(path).stem
    return stem.removeprefix("responses_").removesuffix("_responses") or stem


def read_responses(path: str | Path, items: Sequence[EvalItem], name: str | None = None) -> list[dict[str, Any]]:
    """The published responses (``{"QUESTION_ID", "RESPONSE": [str, ...]}`` per line) as answer records, one per
    attempt, ready for :func:`turnwise.eval.judge.run_judge`."""
    by_id = {item.id: item for item in items}
    name = name or model_name(path)
    records, seen = [], set()
    for line, row in iter_records(path):
        qid = str(row.get("QUESTION_ID"))
        if not is_response(row):
            raise InputError(str(path), line, "expected {QUESTION_ID, RESPONSE} (MultiChallenge's responses layout)")
        if qid not in by_id:
            raise InputError(str(path), line, f"QUESTION_ID {qid!r} is not in the benchmark's questions")
        if qid in seen:
            raise InputError(str(path), line, f"duplicate QUESTION_ID {qid!r}")
        seen.add(qid)
        responses = [row["RESPONSE"]] if isinstance(row["RESPONSE"], str) else row["RESPONSE"]
        if not isinstance(responses, list) or not responses or not all(isinstance(r, str) for r in responses):
            raise InputError(str(path), line, "'RESPONSE' must be a string or a non-empty list of strings")
        for k, text in enumerate(responses, 1):
            records.append(answer_record(by_id[qid], text, k, name))
    return records


def answer_record(item: EvalItem, response: str, attempt: int, name: str) -> dict[str, Any]:
    """The answer record of one attempt at ``item`` (what `eval answer` writes for it)."""
    answers: list[str | None] = [None] * (len(item.turns) - 1) + [response]
    ok = bool(response.strip())
    meta = {"name": name, "source": item.meta, "item": item.id, "attempt": attempt, "cost": {}}
    return make_record(f"{item.id}#{attempt}", "ok" if ok else "failed", {**item.to_payload(), "answers":
                       answers if ok else [None] * len(item.turns)}, reason=None if ok else "empty response",
                       meta=meta)


async def rubric_entry(judge: Any, item: EvalItem, response: str, turn: int, lang: str, keep_text: bool = True
                       ) -> tuple[dict[str, Any], Any]:
    """Ask the judge ``TARGET_QUESTION`` about ``response``; the entry scores 1 when the verdict is the criteria."""
    messages = judge.messages(TEMPLATE, lang, response=response, target_question=item.meta["target_question"])
    verdict = await judge.ask_messages(messages, VERDICT, lang)
    entry: dict[str, Any] = {"turn": turn, "score": None, "attempts": verdict.attempts,
                             "pass_criteria": item.meta["pass_criteria"]}
    if verdict.ok:
        label = verdict.value[0]
        entry.update(score=1.0 if label == item.meta["pass_criteria"] else 0.0, verdict=label)
        if keep_text:
            entry["text"] = verdict.text
    else:
        entry.update(failure="judge", **verdict.failure())
    return entry, verdict.cost


def _rate(values: Sequence[float]) -> dict[str, Any]:
    return {"rate": sum(values) / len(values) if values else None, "n": len(values)}


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pass rates per axis and overall (see the module docstring); attempts without a verdict are not counted."""
    by_item: dict[str, tuple[str, list[float]]] = {}
    for record in records:
        item = str(record.get("meta", {}).get("item") or record["id"].rsplit("#", 1)[0])
        scores = [float(e["score"]) for e in record.get("scores", []) if e.get("score") is not None]
        by_item.setdefault(item, (str(record["category"]), []))[1].extend(scores)
    axes = sorted({axis for axis, _ in by_item.values()}, key=lambda a: (AXES.index(a) if a in AXES else 9, a))
    table = {}
    for axis in axes:
        groups = [s for a, s in by_item.values() if a == axis and s]
        table[axis] = {"attempts": _rate([v for s in groups for v in s]),
                       "any": _rate([float(max(s)) for s in groups]), "all": _rate([float(min(s)) for s in groups])}
    overall = {key: _mean_of_axes([t[key]["rate"] for t in table.values()]) for key in ("attempts", "any", "all")}
    judged = [s for _, s in by_item.values() if s]
    return {"axes": table, "overall": overall, "items": len(by_item), "judged_items": len(judged),
            "attempts": max((len(s) for s in judged), default=0),
            "items_passing": {"any": _rate([float(max(s)) for s in judged]),
                              "all": _rate([float(min(s)) for s in judged])}}


def _mean_of_axes(rates: list[float | None]) -> float | None:
    known = [r for r in rates if r is not None]
    return sum(known) / len(known) if known else None


def markdown(summary: dict[str, Any], model: str, judge: str) -> str:
    """A table: per axis and overall, the pass rate over attempts and, with several attempts, any-of-N and all-of-N."""
    n = summary["attempts"]
    header = ["axis", "items", "pass rate"] + ([f"any of {n}", f"all of {n}"] if n > 1 else [])
    rows = []
    for axis, row in summary["axes"].items():
        cells = [axis, str(row["any"]["n"]), _pct(row["attempts"]["rate"])]
        rows.append(cells + ([_pct(row["any"]["rate"]), _pct(row["all"]["rate"])] if n > 1 else []))
    overall = summary["overall"]
    rows.append(["**overall (mean of axes)**", str(summary["judged_items"]), _pct(overall["attempts"])]
                + ([_pct(overall["any"]), _pct(overall["all"])] if n > 1 else []))
    lines = ["| " + " | ".join(header) + " |", "|:--" + "|--:" * (len(header) - 1) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return (f"### multichallenge: {model}, YES/NO rubric (judge {judge}; pass = verdict equals PASS_CRITERIA)\n\n"
            + "\n".join(lines))


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"
