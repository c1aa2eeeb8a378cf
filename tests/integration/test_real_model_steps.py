"""Every model-facing step on a real model's replies (SmolLM2-135M-Instruct, local backend, a few calls each):
the records have their shape, every failure keeps its reason and raw reply, no input loses its record, and with
structured replies (constrained decoding) the replies are read. bench/real_model_steps.py measures the rates on
100+ calls per step; this checks the wiring on real text within the suite's time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from turnwise.recipe import load_recipe, make_plan, run_plan

pytest.importorskip("gguf")
pytest.importorskip("xgrammar")
pytestmark = pytest.mark.integration

MODEL = {"model": "smollm2-135m-instruct", "backend": "local", "concurrency": 16, "dtype": "float32"}
DIALOGUES = [
    {"id": "nile", "messages": [{"role": "user", "content": "Tell me about the Nile river."},
                                {"role": "assistant", "content": "The Nile flows north through Egypt into the sea."},
                                {"role": "user", "content": "How long is it?"},
                                {"role": "assistant", "content": "The Nile is about 6,650 km long."}]},
    {"id": "curie", "messages": [{"role": "user", "content": "Who was Marie Curie?"},
                                 {"role": "assistant", "content": "A physicist and chemist who studied radioactivity."},
                                 {"role": "user", "content": "What did she discover?"},
                                 {"role": "assistant", "content": "She discovered polonium and radium."}]},
]
CANARD = [{"History": ["Walter Scott", "Early days"], "QuAC_dialog_id": "C_1", "Question": "where was he born?",
           "Question_no": 1, "Rewrite": "Where was Walter Scott born?"}]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    """One recipe over every model-facing step, structured replies; and the judges once more in text."""
    from turnwise.errors import ConfigError
    from turnwise.models.embedded import gguf_path

    try:
        gguf_path("smollm2-135m-instruct")
    except ConfigError as exc:
        pytest.skip(str(exc))
    folder = tmp_path_factory.mktemp("real-steps")
    files = {"dialogues": folder / "dialogues.jsonl", "turns": folder / "turns.jsonl", "canard": folder / "c.json",
             "seeds": folder / "seeds.txt"}
    files["dialogues"].write_text("".join(json.dumps(d) + "\n" for d in DIALOGUES), encoding="utf-8")
    files["turns"].write_text(json.dumps({"id": "t1", "turns": ["Name a river in Egypt.", "How long is it?"]}) + "\n",
                              encoding="utf-8")
    files["canard"].write_text(json.dumps(CANARD), encoding="utf-8")
    files["seeds"].write_text("What is a black hole?\n", encoding="utf-8")
    text_judge = {"name": "detect_text", "kind": "detect", "inputs": {"dialogues": {"file": str(files["dialogues"])}},
                  "models": {"judge": "smol"},
                  "settings": {"lang": "en", "judge": {"judge_on": "all", "settings": {"max_tokens": 48}}}}
    stages = [*steps(files, structured=True), text_judge]
    recipe = {"out_dir": str(folder / "out"), "seed": 0, "models": {"smol": MODEL}, "stages": stages}
    (folder / "r.yaml").write_text(json.dumps(recipe), encoding="utf-8")
    result = run_plan(make_plan(load_recipe(folder / "r.yaml")))
    return {o.stage.name: o for o in result.outcomes}


def steps(files: dict[str, Path], structured: bool) -> list[dict[str, Any]]:
    judge = {"judge_attempts": 1, "structured": structured, "judge_max_tokens": 128}
    dialogues = {"file": str(files["dialogues"])}
    return [
        {"name": "simulate", "kind": "simulate", "inputs": {"seeds": {"file": str(files["seeds"])}},
         "models": {"user": "smol", "assistant": "smol"},
         "settings": {"mode": "prompted", "turns": 2, "min_turns": 1, "max_regenerations": 0, "lang": "en",
                      "user_settings": {"max_tokens": 24}, "assistant_settings": {"temperature": 0, "max_tokens": 32}}},
        {"name": "detect", "kind": "detect", "inputs": {"dialogues": dialogues}, "models": {"judge": "smol"},
         "settings": {"lang": "en", "judge": {"judge_on": "all", "structured": structured,
                                              "settings": {"max_tokens": 128}}}},
        {"name": "capo", "kind": "capo", "inputs": {"dialogues": dialogues}, "models": {"negative": "smol"},
         "settings": {"prompted": True, "structured": structured, "lang": "en", "mix": {"hallucination": 1},
                      "settings": {"temperature": 0, "max_tokens": 96}}},
        {"name": "score", "kind": "score", "inputs": {"answers": dialogues}, "models": {"judge": "smol"},
         "settings": {**judge, "limit": 1, "retriever": "bm25", "longreward": {"lang": "en"}}},
        {"name": "answers", "kind": "eval_answer", "inputs": {"benchmark": {"file": str(files["turns"])}},
         "models": {"model": "smol"}, "settings": {"temperature": 0, "max_tokens": 24}},
        {"name": "single", "kind": "eval_judge", "inputs": {"answers": "answers"}, "models": {"judge": "smol"},
         "settings": {**judge, "lang": "en"}},
        {"name": "pairwise", "kind": "eval_judge", "inputs": {"answers": "answers", "baseline": "answers"},
         "models": {"judge": "smol"}, "settings": {**judge, "lang": "en"}},
        {"name": "rewrite", "kind": "rewrite", "inputs": {"conversations": {"file": str(files["canard"])}},
         "models": {"model": "smol"}, "settings": {"input_format": "canard", "gate": "always", "variant": "direct",
                                                   "structured": structured, "max_tokens": 64, "lang": "en"}},
    ]


def records(outcome: Any, name: str) -> list[dict[str, Any]]:
    path = outcome.stage.dir / name
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_stage_ran_on_real_text_and_kept_every_record(run):
    assert all(o.status == "ran" for o in run.values())
    assert len(records(run["detect"], "detections.jsonl")) == 2 and len(records(run["score"], "scores.jsonl")) == 1
    assert len(records(run["rewrite"], "rewrites.jsonl")) == 1 and len(records(run["single"], "judgements.jsonl")) == 1
    simulated = records(run["simulate"], "dialogues.jsonl")
    assert len(simulated) == 1 and simulated[0]["messages"][1]["content"].strip()  # a real answer
    for outcome in run.values():
        numbers = outcome.record["numbers"]
        for tally in numbers.get("replies", {}).values():  # what the report shows: read / calls and why not
            assert tally["read"] + sum(tally["reasons"].values()) <= tally["calls"]
            assert tally["read"] == tally["calls"] or tally["reasons"]


def test_structured_replies_are_read(run):
    tallies = [t for name in ("detect", "single", "pairwise", "rewrite")
               for t in run[name].record["numbers"]["replies"].values()]
    assert all(t["calls"] for t in tallies)
    assert sum(t["read"] for t in tallies) / sum(t["calls"] for t in tallies) >= 0.5  # a weak model, but JSON
    verdicts = [e for r in records(run["detect"], "detections.jsonl") for t in r["turns"] for e in t["evidence"]
                if e.get("cue") == "judge"]
    assert verdicts and all(json.loads(e["raw"])["verdict"] in ("dependent", "standalone") for e in verdicts
                            if "verdict" in e)


def test_a_reply_that_cannot_be_read_is_a_record_with_its_reason_and_raw_text(run):
    judged = [e for r in records(run["detect_text"], "detections.jsonl") for t in r["turns"] for e in t["evidence"]
              if e.get("cue") == "judge"]
    assert judged and all(("verdict" in e) != ("error" in e) and "raw" in e for e in judged)
    for record in records(run["score"], "scores.jsonl"):
        for result in record["results"]:
            for dim in result["dimensions"].values():
                assert dim["status"] in ("ok", "failed", "n/a")
                if dim["status"] == "failed":
                    assert dim["reason"] and '"raw"' in json.dumps(dim["details"])
    for record in records(run["capo"], "records.jsonl"):
        assert record["status"] in ("ok", "filtered", "failed") and (record["status"] == "ok" or record["reason"])
