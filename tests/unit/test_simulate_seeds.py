"""Seeds: the first user turn of ShareGPT, OpenAI, Alpaca and TRL preference records, or text lines."""

from __future__ import annotations

import json

import pytest

from turnwise.errors import InputError
from turnwise.simulate.seeds import read_seeds


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_sharegpt_first_user_turn_and_system(tmp_path):
    path = write_jsonl(tmp_path / "sg.jsonl", [
        {"id": "x1", "system": "Be brief.", "conversations": [
            {"from": "human", "value": "What is a cache?"}, {"from": "gpt", "value": "A store."},
            {"from": "human", "value": "Why?"}, {"from": "gpt", "value": "Speed."}]},
        {"conversations": [{"from": "human", "value": "缓存是什么？"}, {"from": "gpt", "value": "存储。"}]},
    ])
    seeds, report = read_seeds(path)
    seeds = list(seeds)
    assert [(s.id, s.text, s.system) for s in seeds] == [
        ("x1", "What is a cache?", "Be brief."), ("sg-2", "缓存是什么？", None)]
    assert report.fmt == "sharegpt" and report.read == 2


def test_openai_alpaca_and_preference_records(tmp_path):
    openai = write_jsonl(tmp_path / "o.jsonl", [{"id": "o", "messages": [
        {"role": "system", "content": "S"}, {"role": "user", "content": "U1"}, {"role": "assistant", "content": "A"}]}])
    alpaca = write_jsonl(tmp_path / "a.jsonl", [
        {"instruction": "Summarize", "input": "the text", "output": "done"},
        {"instruction": "Later", "output": "o", "history": [["First?", "yes"]]}])
    pref = write_jsonl(tmp_path / "p.jsonl", [{"id": "p", "prompt": "Pick one?", "chosen": "a", "rejected": "b"}])
    assert [(s.id, s.text, s.system) for s in read_seeds(openai)[0]] == [("o", "U1", "S")]
    assert [s.text for s in read_seeds(alpaca)[0]] == ["Summarize\n\nthe text", "First?"]
    assert [(s.id, s.text) for s in read_seeds(pref)[0]] == [("p", "Pick one?")]


def test_text_lines_with_stable_ids(tmp_path):
    path = tmp_path / "seeds.txt"
    path.write_text("\ufeffWhat is a cache?\n\n  Why is the sky blue?  \n", encoding="utf-8")
    seeds, report = read_seeds(path)
    assert [(s.id, s.text) for s in seeds] == [("seeds-1", "What is a cache?"), ("seeds-3", "Why is the sky blue?")]
    assert report.fmt == "text" and report.read == 2
    other = tmp_path / "questions.lst"
    other.write_text("One?\n", encoding="utf-8")
    assert [s.id for s in read_seeds(other, "text")[0]] == ["questions-1"]


def test_seeds_stream_lazily_and_bad_records_name_their_line(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"messages": [{"role": "user", "content": "ok"}]},
                                                {"messages": [{"role": "assistant", "content": "no user"}]}])
    seeds, _ = read_seeds(path)
    assert next(seeds).text == "ok"  # the first seed is there before the bad line is read
    with pytest.raises(InputError, match=r"bad\.jsonl:2"):
        next(seeds)
    kept, report = read_seeds(path, skip_invalid=True)
    assert len(list(kept)) == 1 and report.total == 1
