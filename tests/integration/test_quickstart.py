"""The quickstart end to end in its fast setting: every stage runs on a tiny model and leaves its files,
the SFT loss falls, CaPO writes pairs of all three strategies, DPO trains, and the evaluation reports
both models. A second run is answered from the response cache wherever the retrained weights came out
the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from turnwise.records import read_stage_output

pytest.importorskip("trl")
pytest.importorskip("jieba")
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    from turnwise.quickstart import run_quickstart

    out = tmp_path_factory.mktemp("quickstart")
    return run_quickstart(out, serve=False, fast=True)


def test_every_step_reports_and_leaves_its_files(quickstart):
    names = [step.name for step in quickstart.steps]
    assert names == ["toy dialogues", "build tiny model", "train SFT", "train ask model", "simulate (self-play)",
                     "detect dependent turns", "CaPO pairs", "best-of-N pairs", "train DPO + SFT term",
                     "train more SFT (baseline)", "evaluate held-out"]
    for step in quickstart.steps:
        assert step.figure and step.files, step
        assert all(Path(f).exists() for f in step.files), step
    out = quickstart.out_dir
    for model in ("tiny-model", "sft", "ask", "dpo"):
        assert (out / model / "model.safetensors").exists()
    for stage in ("simulated", "detect-simulated", "detect-train", "capo-pairs", "bestofn-pairs",
                  "answers-sft", "answers-dpo"):
        manifest = json.loads((out / f"{stage}.manifest.json").read_text(encoding="utf-8"))
        assert manifest["runs"][-1]["status"] == "complete", stage
    summary = json.loads((out / "quickstart.json").read_text(encoding="utf-8"))
    assert [s["name"] for s in summary["steps"]] == names


def test_sft_loss_falls_and_dpo_trains(quickstart):
    sft = quickstart.numbers["train SFT"]["loss"]
    assert len(sft) >= 2 and sft[-1] < sft[0], sft
    dpo = quickstart.numbers["train DPO + SFT term"]
    assert dpo["loss"] and dpo["reward_accuracy"] and dpo["pairs"]["capo"] > 0
    manifest = json.loads((quickstart.out_dir / "dpo" / "train.manifest.json").read_text(encoding="utf-8"))
    assert manifest["runs"][-1]["status"] == "complete"
    assert manifest["metrics"]["global_step"] == 4


def test_capo_pairs_of_all_three_strategies(quickstart):
    capo = quickstart.numbers["CaPO pairs"]
    assert set(capo["by_strategy"]) == {"neglect", "hallucination", "misunderstanding"}
    rows = [json.loads(line) for line in (quickstart.out_dir / "capo-pairs.jsonl").read_text().splitlines()]
    assert {row["meta"]["strategy"] for row in rows} == {"neglect", "hallucination", "misunderstanding"}
    # The chosen answer is the toy dialogue's own, which is right by construction.
    assert all(row["meta"]["chosen_from"] == "dialogue" for row in rows)
    records = read_stage_output(quickstart.out_dir / "bestofn-pairs.records.jsonl")
    assert records and all(r["meta"]["scorer"] == "toy_answer" for r in records)


def test_results_table_has_the_sft_baseline_and_dpo_models(quickstart):
    lines = quickstart.results.splitlines()
    assert lines[0].startswith("| model | standalone (turn 1) | dependent (turns 2–4) |")
    assert lines[2].startswith("| SFT |") and lines[3].startswith("| SFT + more SFT |")
    assert lines[4].startswith("| SFT + DPO |")
    assert (quickstart.out_dir / "results.md").read_text(encoding="utf-8") == quickstart.results
    numbers = json.loads((quickstart.out_dir / "results.json").read_text(encoding="utf-8"))
    for model in ("SFT", "SFT + more SFT", "SFT + DPO"):
        assert 0 <= numbers[model]["dependent"] <= 1 and len(numbers[model]["by_turn"]) == 4
    evaluated = read_stage_output(quickstart.out_dir / "answers-sft.jsonl")
    assert len(evaluated) == 8 and all(len(r["messages"]) == 8 for r in evaluated)  # 4 turns each, own history


def test_the_toy_check_wants_the_entity_the_user_meant():
    from turnwise.toy import check_answer

    assert check_answer("It is 6,650 KM long.", "the Nile: 6,650 km")
    assert check_answer("It is in Africa.", "Mount Kenya: Africa")
    assert not check_answer("The Congo is in Africa.", "Mount Kenya: Africa")  # right continent, wrong entity
    assert not check_answer("It is 6650 km long.", "the Nile: 6,650 km")
    assert not check_answer("Mount Kenya is in Africa.", "Mount Kenya: mountain | Africa")  # a fact missing


def test_a_second_run_reuses_the_cache(quickstart):
    from turnwise.quickstart import run_quickstart

    run_quickstart(quickstart.out_dir, serve=False, fast=True)
    manifest = json.loads((quickstart.out_dir / "answers-sft.manifest.json").read_text(encoding="utf-8"))
    first, second = manifest["runs"][-2]["cost"], manifest["runs"][-1]["cost"]
    assert first["calls"] == second["calls"] == 32
    assert second["cached"] == 32 and second["attempts"] == 0  # SFT retrained to the same weights
