"""The quickstart recipe, tiny, end to end: every stage runs and leaves its outputs; a second run is all
cached and takes seconds; a new DPO β re-runs that DPO stage, eval and report only, and the evaluation of the
unchanged SFT model is answered from the response cache."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from tiny_quickstart import STAGES, TINY

from turnwise.recipe import load_recipe, make_plan, run_plan

pytest.importorskip("trl")
pytestmark = pytest.mark.integration

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "quickstart.yaml"


def plan(out: Path, *sets: str):
    return make_plan(load_recipe(RECIPE, fast=True, sets=[*TINY, f"out_dir={out}", *sets]))


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    out = tmp_path_factory.mktemp("recipe-quickstart")
    return out, run_plan(plan(out))


def test_every_stage_runs_and_leaves_its_outputs(first):
    out, result = first
    assert [(o.stage.name, o.status) for o in result.outcomes] == [(name, "ran") for name in STAGES]
    for outcome in result.outcomes:
        record = json.loads((outcome.stage.dir / "stage.json").read_text(encoding="utf-8"))
        assert record["key"] == outcome.stage.key and record["summary"]
        assert all((outcome.stage.dir / rel).exists() for rel in record["outputs"].values())
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Results: eval" in report and "| SFT + CaPO-DPO |" in report and "| SFT + more SFT |" in report
    assert (out / "cache.sqlite").exists() and (out / "report.html").exists()


def test_a_second_run_is_all_cached_and_fast(first):
    out, _ = first
    start = time.perf_counter()
    result = run_plan(plan(out))
    assert time.perf_counter() - start < 5
    assert [o.status for o in result.outcomes] == ["cached"] * len(STAGES)


def test_a_new_beta_reruns_dpo_eval_and_report_only(first):
    out, _ = first
    changed = plan(out, "train_dpo_capo.beta=0.2")
    to_run = [s.name for s in changed.stages if s.action != "cached"]
    assert to_run == ["train_dpo_capo", "eval", "report"]
    assert changed.get("train_dpo_capo").reason == "beta 0.5 → 0.2"
    result = run_plan(changed)
    assert [o.stage.name for o in result.outcomes if o.status == "ran"] == to_run
    cost = result.outcomes[STAGES.index("eval")].record["cost"]["by_model"]
    assert cost["SFT"]["calls"] == cost["SFT"]["cached"] > 0  # the SFT model did not change: all from the cache
    assert cost["SFT + CaPO-DPO"]["cached"] < cost["SFT + CaPO-DPO"]["calls"]
    assert cost["SFT + more SFT"]["calls"] == cost["SFT + more SFT"]["cached"] > 0
