"""Read a benchmark file into :class:`~turnwise.eval.items.EvalItem` s, by name or from its keys.

    items = load_benchmark("question.jsonl")                          # MT-Bench, references joined
    items = load_benchmark("mt-bench_extended.jsonl")                 # MT-Eval: 80 sessions of 5 turns
    items = load_benchmark("mtbench101.jsonl")                        # MT-Bench-101: gold history
    items = load_benchmark("my_8_turns.jsonl", "turns")               # your own N-turn dialogues

The conversation readers of :mod:`turnwise.data.formats` do the parsing (and name file, line and rule
on bad input); this module adds what evaluation needs on top:

- **mt-bench** (FastChat's ``question.jsonl``): reference answers by ``question_id`` from FastChat's
  ``reference_answer/gpt-4.jsonl`` (found beside the questions, or given), every turn judged.
- **mt-eval** (``mt-bench_extended.jsonl``): the same 80 questions extended to 5 dependent turns; the
  model answers with its own history (the file's GPT-4 answers are kept as ``gold``, unused).
- **mt-bench-101**: each judged turn is answered after the *gold* history; the first turn is not judged
  in the tasks where it only sets the scene (FR, CR, AR, SA, SC, CM), and the gold answer of the judged
  turn is the reference in the reasoning tasks (MR, GR), as OpenCompass's MT-Bench-101 loader does.
- **turns**: turnwise's own format, see :mod:`turnwise.eval.turns_format`.
- **multichallenge** (``benchmark_questions.jsonl``): a given history and a final user turn, judged YES/NO
  against a rubric question, see :mod:`turnwise.eval.multichallenge`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from turnwise.data.formats import read_records
from turnwise.data.io import iter_records
from turnwise.data.schema import Conversation
from turnwise.errors import ConfigError, InputError, SchemaError
from turnwise.eval.items import BENCHMARKS, EvalItem
from turnwise.eval.turns_format import read_turns

log = logging.getLogger(__name__)

# MT-Bench-101 (OpenCompass opencompass/datasets/subjective/mtbench101.py): tasks whose first turn is not
# judged, and tasks judged against the gold answer as the reference solution.
MT_BENCH_101_SKIP_FIRST = ("FR", "CR", "AR", "SA", "SC", "CM")
MT_BENCH_101_NEED_REF = ("MR", "GR")
FASTCHAT_REFERENCES = Path("reference_answer") / "gpt-4.jsonl"
REFERENCE_MODES = ("auto", "question", "none")


def detect_benchmark(record: dict) -> str:
    """The benchmark a record belongs to, from its keys.

    Raises:
        SchemaError: no benchmark fits.
    """
    keys = set(record)
    if {"QUESTION_ID", "AXIS", "CONVERSATION"} <= keys:
        return "multichallenge"
    if {"task", "history"} <= keys:
        return "mt-bench-101"
    if "conversation" in keys:
        return "mt-eval"
    if "turns" in keys and "question_id" in keys:
        return "mt-bench"
    if "turns" in keys and "id" in keys:
        return "turns"
    raise SchemaError(f"cannot tell the benchmark from the keys {sorted(keys)}; name it with --benchmark "
                      f"(one of {', '.join(BENCHMARKS)})")


def load_benchmark(path: str | Path, benchmark: str = "auto", *, references: str | Path = "auto",
                   limit: int | None = None) -> list[EvalItem]:
    """Every dialogue of a benchmark file, in file order.

    Args:
        path: the benchmark file (JSONL or a JSON array).
        benchmark: ``auto`` (from the first record's keys) or a name in :data:`BENCHMARKS`.
        references: MT-Bench only: ``auto`` (FastChat's ``reference_answer/gpt-4.jsonl`` beside the
            questions, when it is there), ``question`` (the ``reference`` lists inside question.jsonl),
            ``none``, or the path of a FastChat answer file whose answers are the references.
        limit: keep only the first ``limit`` dialogues.

    Raises:
        ConfigError: an unknown benchmark name, or a reference file that does not exist.
        InputError: a malformed record (file, line and rule).
    """
    path = Path(path)
    name = _detect(path) if benchmark == "auto" else benchmark
    if name not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {name!r} (expected auto or one of {', '.join(BENCHMARKS)})")
    if name == "turns":
        items = read_turns(path)
    elif name == "multichallenge":
        from turnwise.eval.multichallenge import load_multichallenge

        items = load_multichallenge(path)
    else:
        fmt = {"mt-bench": "mt-bench", "mt-eval": "mt-eval", "mt-bench-101": "mt-bench-101"}[name]
        conversations, _ = read_records(path, fmt)
        convert = {"mt-bench": _mt_bench, "mt-eval": _mt_eval, "mt-bench-101": _mt_bench_101}[name]
        items = [_located(path, conv, convert) for conv in conversations]
    items = items[:limit] if limit is not None else items
    _check_unique(path, items)
    if name == "mt-bench":
        _join_references(path, items, references)
    return items


def _detect(path: Path) -> str:
    for line, record in iter_records(path):
        try:
            return detect_benchmark(record)
        except SchemaError as exc:
            raise InputError(str(path), line, str(exc)) from None
    raise InputError(str(path), None, "no records")


def _located(path: Path, conv: Conversation, convert) -> EvalItem:
    try:
        return convert(conv)
    except SchemaError as exc:
        raise InputError(str(path), f"record {conv.id!r}", str(exc)) from None


def _check_unique(path: Path, items: list[EvalItem]) -> None:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise InputError(str(path), f"record {item.id!r}", "duplicate id: ids must be unique")
        seen.add(item.id)


def _answers(conv: Conversation) -> list[str]:
    return [m["content"] for m in conv.messages if m["role"] == "assistant"]


def _mt_bench(conv: Conversation) -> EvalItem:
    turns = conv.user_turns
    meta = {k: v for k, v in conv.meta.items() if k not in ("category", "question_id")}
    return EvalItem(conv.id, "mt-bench", str(conv.meta.get("category", "general")), turns,
                    list(range(1, len(turns) + 1)), system=conv.system, meta=meta)


def _mt_eval(conv: Conversation) -> EvalItem:
    turns = conv.user_turns
    gold = _answers(conv)
    meta = {k: v for k, v in conv.meta.items() if k not in ("category", "question_id")}
    return EvalItem(conv.id, "mt-eval", str(conv.meta.get("category", "general")), turns,
                    list(range(1, len(turns) + 1)), gold=gold + [None] * (len(turns) - len(gold)),
                    system=conv.system, meta=meta)


def _mt_bench_101(conv: Conversation) -> EvalItem:
    turns = conv.user_turns
    gold = _answers(conv)
    gold = gold + [None] * (len(turns) - len(gold))
    task = str(conv.meta["task"])
    first = 2 if task in MT_BENCH_101_SKIP_FIRST and len(turns) > 1 else 1
    references = gold if task in MT_BENCH_101_NEED_REF else None
    meta = {k: v for k, v in conv.meta.items() if k != "task"}
    return EvalItem(conv.id, "mt-bench-101", task, turns, list(range(first, len(turns) + 1)), history="gold",
                    gold=gold, references=references, system=conv.system, meta=meta)


def _join_references(path: Path, items: list[EvalItem], references: str | Path) -> None:
    """Set each MT-Bench item's references from the source ``references`` names (see load_benchmark)."""
    if references == "none":
        return
    if references == "question":
        for item in items:
            found = item.meta.get("reference")
            if isinstance(found, list) and found:
                item.references = _per_turn([str(r) for r in found], len(item.turns))
        return
    file = path.parent / FASTCHAT_REFERENCES if references == "auto" else Path(references)
    if references == "auto" and not file.is_file():
        log.info("no %s beside %s: MT-Bench is judged without reference answers", FASTCHAT_REFERENCES, path)
        return
    if not file.is_file():
        raise ConfigError(f"reference answers {file} not found (give a FastChat answer file, question, none or auto)")
    table = read_reference_file(file)
    for item in items:
        if item.id in table:
            item.references = _per_turn(table[item.id], len(item.turns))


def _per_turn(values: list[str], n: int) -> list[str | None]:
    return [values[i] if i < len(values) and values[i].strip() else None for i in range(n)]


def read_reference_file(path: str | Path) -> dict[str, list[str]]:
    """FastChat's answer layout ``{"question_id", "choices": [{"turns": [...]}]}`` → question id → turns."""
    table: dict[str, list[str]] = {}
    for line, record in iter_records(path):
        try:
            turns = record["choices"][0]["turns"]
            if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
                raise TypeError
            table[str(record["question_id"])] = turns
        except (KeyError, IndexError, TypeError):
            raise InputError(str(path), line, "expected FastChat's {question_id, choices: [{turns: [str]}]}") from None
    return table


def describe_items(items: list[EvalItem]) -> dict:
    """Counts for manifests: dialogues, turns, judged turns, references, per category."""
    categories: dict[str, int] = {}
    for item in items:
        categories[item.category] = categories.get(item.category, 0) + 1
    return {
        "dialogues": len(items),
        "turns": sum(len(i.turns) for i in items),
        "judged_turns": sum(len(i.judged) for i in items),
        "with_references": sum(1 for i in items if i.references and any(i.references)),
        "categories": categories,
    }


def dumps_item(item: EvalItem) -> str:
    """An item as one line of turnwise's N-turn format (what :func:`read_turns` reads back)."""
    record = {"id": item.id, "category": item.category, "turns": item.turns, "judged": item.judged,
              "history": item.history}
    for key in ("gold", "references", "system"):
        if getattr(item, key) is not None:
            record[key if key != "gold" else "answers"] = getattr(item, key)
    return json.dumps(record, ensure_ascii=False)
