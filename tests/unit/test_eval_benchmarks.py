"""Benchmark readers on the real files in ../shared/data, and turnwise's N-turn format."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from turnwise.errors import ConfigError, InputError
from turnwise.eval.benchmarks import detect_benchmark, dumps_item, load_benchmark
from turnwise.eval.turns_format import read_turns

MT_BENCH_CATEGORIES = ["writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"]


def test_mt_bench_has_80_two_turn_questions_with_references_for_math_reasoning_coding(shared_data: Path) -> None:
    items = load_benchmark(shared_data / "mt_bench" / "question.jsonl")
    assert len(items) == 80
    assert {i.benchmark for i in items} == {"mt-bench"}
    assert all(len(i.turns) == 2 and i.judged == [1, 2] and i.history == "own" for i in items)
    assert Counter(i.category for i in items) == dict.fromkeys(MT_BENCH_CATEGORIES, 10)
    with_refs = {i.id for i in items if i.references}
    assert with_refs == {str(q) for q in range(101, 131)}  # FastChat's reference_answer/gpt-4.jsonl
    assert {i.category for i in items if i.references} == {"math", "reasoning", "coding"}
    area = next(i for i in items if i.id == "111")
    assert area.references is not None and "Area = 0" in area.references[0]  # GPT-4's (wrong) reference
    assert len(area.references) == 2 and all(area.references)


def test_mt_bench_references_from_the_question_file_or_none(shared_data: Path) -> None:
    path = shared_data / "mt_bench" / "question.jsonl"
    own = {i.id: i for i in load_benchmark(path, references="question")}
    assert own["111"].references == ["Area is 3", "5pi"]  # the corrected human reference
    assert sum(1 for i in own.values() if i.references) == 39
    assert not any(i.references for i in load_benchmark(path, references="none"))
    with pytest.raises(ConfigError, match="not found"):
        load_benchmark(path, references=str(path.parent / "missing.jsonl"))


def test_mt_eval_has_80_sessions_of_5_turns_and_no_final_newline(shared_data: Path) -> None:
    path = shared_data / "mt_eval" / "mt-bench_extended.jsonl"
    assert not path.read_bytes().endswith(b"\n")
    items = load_benchmark(path)
    assert len(items) == 80
    assert {i.benchmark for i in items} == {"mt-eval"}
    assert all(len(i.turns) == 5 and i.judged == [1, 2, 3, 4, 5] and i.history == "own" for i in items)
    assert all(i.gold is not None and all(i.gold) for i in items)  # GPT-4's answers, kept but unused
    assert items[-1].id == "160" and items[0].category == "writing"


def test_mt_bench_101_has_1388_dialogues_with_gold_history(shared_data: Path) -> None:
    items = load_benchmark(shared_data / "mt_bench_101" / "mtbench101.jsonl")
    assert len(items) == 1388
    assert {i.history for i in items} == {"gold"}
    assert sum(len(i.turns) for i in items) == 4208  # the paper's count of turns
    assert len(Counter(i.category for i in items)) == 13
    ar = next(i for i in items if i.category == "AR")  # first turn only sets the scene: not judged
    assert ar.judged == list(range(2, len(ar.turns) + 1))
    gr = next(i for i in items if i.category == "GR")  # judged against the gold answer
    assert gr.judged[0] == 1 and gr.references == gr.gold
    assert gr.id.startswith("GR-")
    assert gr.prefix(2)[-1] == {"role": "user", "content": gr.turns[1]}
    assert gr.prefix(2)[1] == {"role": "assistant", "content": gr.gold[0]}


def test_detection_from_keys() -> None:
    assert detect_benchmark({"question_id": 1, "turns": []}) == "mt-bench"
    assert detect_benchmark({"conversation": []}) == "mt-eval"
    assert detect_benchmark({"task": "AR", "id": 1, "history": []}) == "mt-bench-101"
    assert detect_benchmark({"id": "x", "turns": []}) == "turns"


def _write(path: Path, *records: dict) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_turns_format_reads_eight_turns_and_keeps_extras(tmp_path: Path) -> None:
    turns = [f"turn {k}: and what about it?" for k in range(1, 9)]
    path = _write(tmp_path / "mine.jsonl",
                  {"id": 7, "category": "travel", "turns": turns, "references": [None] * 7 + ["fine"], "team": "x"},
                  {"id": "g", "turns": ["a?", "b?"], "history": "gold", "answers": ["A.", None], "judged": [2]})
    first, gold = load_benchmark(path)
    assert first.id == "7" and first.benchmark == "turns" and first.judged == list(range(1, 9))
    assert first.references[-1] == "fine" and first.meta == {"team": "x"}
    assert gold.history == "gold" and gold.judged == [2] and gold.prefix(2)[1]["content"] == "A."
    assert read_turns(tmp_path / "mine.jsonl")[0].turns == turns
    again = _write(tmp_path / "again.jsonl", json.loads(dumps_item(gold)))
    assert load_benchmark(again, "turns")[0] == gold


@pytest.mark.parametrize(("record", "rule"), [
    ({"id": "a", "turns": []}, "at least one user turn"),
    ({"id": "a", "turns": ["x", 3]}, r"turns\[1\] must be a string"),
    ({"id": "a", "turns": ["x"], "judged": [2]}, "within 1–1"),
    ({"id": "a", "turns": ["x", "y"], "history": "gold"}, "gold answers of turns 1–1"),
    ({"id": "a", "turns": ["x"], "references": ["r", "s"]}, "references has 2 entries for 1 turns"),
    ({"id": "a", "turns": ["x"], "history": "mine"}, "history must be one of"),
])
def test_turns_format_errors_name_file_line_and_rule(tmp_path: Path, record: dict, rule: str) -> None:
    path = _write(tmp_path / "bad.jsonl", {"id": "ok", "turns": ["fine"]}, record)
    with pytest.raises(InputError, match=rf"bad.jsonl:2: .*{rule}"):
        load_benchmark(path, "turns")


def test_duplicate_ids_unknown_names_and_limit(tmp_path: Path) -> None:
    path = _write(tmp_path / "dup.jsonl", {"id": "a", "turns": ["x"]}, {"id": "a", "turns": ["y"]})
    with pytest.raises(InputError, match="duplicate id"):
        load_benchmark(path)
    assert len(load_benchmark(path, limit=1)) == 1
    with pytest.raises(ConfigError, match="unknown benchmark"):
        load_benchmark(path, "mt-bench++")
    with pytest.raises(InputError, match="cannot tell the benchmark"):
        load_benchmark(_write(tmp_path / "other.jsonl", {"messages": []}))
