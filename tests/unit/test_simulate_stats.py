"""Run statistics: turns per dialogue, filter counts, and the share of context-dependent user turns."""

from __future__ import annotations

import builtins
import json

from turnwise.simulate import stats as stats_module
from turnwise.simulate.stats import context_cues, count_dependent, is_context_dependent, iter_output, summarize


def record(rid, status, users, filters=None, finished_by="turns"):
    messages = []
    for text in users:
        messages += [{"role": "user", "content": text}, {"role": "assistant", "content": "An answer."}]
    meta = {"turns": len(users), "filters": filters or {}, "finished_by": finished_by}
    return {"id": rid, "status": status, "messages": messages, "meta": meta}


RECORDS = [
    record("a", "ok", ["What is Python?", "Why is it popular?", "Show me an example of that."], {"repeated": 2}),
    record("b", "ok", ["Tell me about Rome.", "How big is Paris?"]),
    record("c", "filtered", ["Hi?"], {"too_short": 4}, finished_by="filter"),
]


def test_fallback_pronoun_cues():
    assert context_cues("Why is it popular, and what about the other one?") == ["it", "what about", "the other one"]
    assert context_cues("它为什么快？那个呢？") == ["它", "那个"]
    assert is_context_dependent("Show me that.") and not is_context_dependent("How big is Paris?")


def test_summary_by_hand():
    data = summarize(RECORDS).to_dict()
    assert data["dialogues"] == 3 and data["status"] == {"ok": 2, "filtered": 1}
    assert data["finished_by"] == {"turns": 2, "filter": 1}
    # ok dialogues only: 3 and 2 turns; simulated user turns are the 2 + 1 after each seed.
    assert data["turns_per_dialogue"] == 2.5 and data["turns_histogram"] == {"2": 1, "3": 1}
    assert data["simulated_user_turns"] == 3
    # "Why is it popular?" and "Show me an example of that." lean on the history; "How big is Paris?" does not.
    assert data["context_dependent"]["turns"] == 2
    assert data["context_dependent"]["share_of_simulated_user_turns"] == 0.667
    assert data["context_dependent"]["per_dialogue"] == 1.0
    assert data["filters"] == {"too_short": 4, "repeated": 2} and data["regenerations"] == 6


def test_counts_taken_as_records_were_written_are_used(monkeypatch):
    """A record with a known count is not read again by the detector; one without is (a resumed record)."""
    seen = []
    real = stats_module.count_dependent
    monkeypatch.setattr(stats_module, "count_dependent", lambda messages: seen.append(messages) or real(messages))
    data = summarize(RECORDS, {"a": (5, "given")}).to_dict()["context_dependent"]
    assert data["turns"] == 5 + 0 and data["detector"] == {"given": 1, stats_module.DETECTOR: 1}
    assert seen == [RECORDS[1]["messages"]]  # only b: a was known, c is not ok
    assert summarize(RECORDS, {"a": count_dependent(RECORDS[0]["messages"])}).to_dict() == summarize(RECORDS).to_dict()


def test_detector_falls_back_to_pronouns_without_turnwise_detect(monkeypatch):
    real_import = builtins.__import__

    def no_detect(name, *args, **kwargs):
        if name.startswith("turnwise.detect"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_detect)
    assert count_dependent(RECORDS[0]["messages"]) == (2, stats_module.FALLBACK)
    assert summarize(RECORDS).to_dict()["context_dependent"]["detector"] == {stats_module.FALLBACK: 2}


def test_iter_output_streams_a_file(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS) + "\n", encoding="utf-8")
    assert [r["id"] for r in iter_output(path)] == ["a", "b", "c"]
    assert "3 dialogues: 1 filtered, 2 ok; 2.5 turns each; 67% of simulated user turns" in summarize(
        iter_output(path)).summary()
