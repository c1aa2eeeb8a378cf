"""`turnwise quickstart`: the packaged quickstart recipe once per seed (tiny here), then the table over seeds
in Markdown, JSON and HTML; a second call is answered by the finished stages."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from tiny_quickstart import STAGES, TINY

pytest.importorskip("trl")
pytestmark = pytest.mark.integration

MODELS = ["SFT", "SFT + matched SFT", "SFT + more SFT", "SFT + CaPO-DPO", "SFT + matched SFT (on-policy pairs)",
          "SFT + on-policy CaPO-DPO", "SFT + matched SFT (round-2 pairs)", "SFT + on-policy CaPO-DPO, round 2",
          "SFT + best-of-N DPO", "SFT + online GRPO (multi-turn)"]


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    from turnwise.quickstart.run import run_quickstart

    out = tmp_path_factory.mktemp("quickstart")
    return run_quickstart(out, seeds=[0, 1], fast=True, sets=TINY)


def test_the_repository_recipe_is_the_packaged_one():
    from turnwise.quickstart.run import recipe_path

    repo = Path(__file__).resolve().parents[2] / "recipes" / "quickstart.yaml"
    assert repo.read_bytes() == recipe_path().read_bytes()


def test_each_seed_is_a_whole_recipe_run(quickstart):
    for seed, run in zip([0, 1], quickstart.runs, strict=True):
        assert [o.stage.name for o in run.outcomes] == STAGES and {o.status for o in run.outcomes} == {"ran"}
        assert run.plan.recipe.out_dir == quickstart.out_dir / f"seed-{seed}" and run.plan.recipe.seed == seed
        assert (quickstart.out_dir / f"seed-{seed}" / "report.md").exists()
    data = [json.loads(next((quickstart.out_dir / f"seed-{s}").glob("data-*/stage.json")).read_text())["settings"]
            for s in (0, 1)]
    assert [d["seed"] for d in data] == [0, 1]  # a different toy world split per seed


def test_the_table_over_seeds(quickstart):
    lines = quickstart.table.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| model"))
    assert lines[header] == ("| model (mean ± sd over 2 seeds) | standalone | dependent | ellipsis | pronoun | "
                             "ordinal | other |")
    assert [line.split(" | ")[0][2:] for line in lines[header + 2: header + 2 + len(MODELS)]] == MODELS
    numbers = json.loads((quickstart.out_dir / "results.json").read_text(encoding="utf-8"))
    for model in MODELS:
        per_seed = [seed[model]["dependent"] for seed in quickstart.per_seed]
        assert numbers["models"][model]["per_seed_dependent"] == per_seed
        mean = numbers["models"][model]["dependent"]["mean"]
        assert mean == pytest.approx(50 * sum(per_seed), abs=0.01)  # percent, the mean of two
    assert "- SFT + CaPO-DPO vs SFT + matched SFT:" in quickstart.verdict and quickstart.verdict in quickstart.table
    assert "Teacher-forced: each turn answered with the gold history" in quickstart.table
    assert set(numbers["teacher_forced"]["models"]) == set(MODELS)
    assert set(numbers["errors"]) == set(MODELS) and set(numbers["errors"]["SFT"]) == {
        "misunderstanding", "neglect_or_hallucination", "no_referent", "fact"}
    for base in ("SFT + matched SFT", "SFT + more SFT"):  # every model against both baselines, with p-values
        assert f"Against **{base}**, pooled over 2 seed(s)" in quickstart.table
        assert set(numbers["paired"][base]) == set(MODELS) - {base}
        row = numbers["paired"][base]["SFT + CaPO-DPO"]["dependent"]
        assert row["low"] <= row["diff"] <= row["high"] and 0 <= row["p"] <= 1
    assert (quickstart.out_dir / "results.md").read_text(encoding="utf-8") == quickstart.table
    page = (quickstart.out_dir / "results.html").read_text(encoding="utf-8")
    assert 'id="turns-toy"' in page and all(f'data-label="{m}"' in page for m in MODELS)


def test_a_second_call_is_answered_by_the_finished_stages(quickstart):
    from turnwise.quickstart.run import run_quickstart

    start = time.perf_counter()
    again = run_quickstart(quickstart.out_dir, seeds=[0, 1], fast=True, sets=TINY)
    assert time.perf_counter() - start < 10
    assert all(o.status == "cached" for run in again.runs for o in run.outcomes)
    assert again.table == quickstart.table


def test_seeds_in_parallel_processes_give_the_same_result(quickstart):
    """jobs=2: each seed's plan runs in its own process (here every stage is finished, so the workers find them
    cached); the parent rebuilds the runs in seed order and writes the same tables."""
    from turnwise.quickstart.run import run_quickstart

    finished = []
    again = run_quickstart(quickstart.out_dir, seeds=[0, 1], fast=True, sets=TINY, jobs=2,
                           on_seed=lambda seed, run: finished.append(seed))
    assert sorted(finished) == [0, 1] and again.table == quickstart.table
    assert [run.plan.recipe.seed for run in again.runs] == [0, 1]
    assert all(o.status == "cached" and o.record for run in again.runs for o in run.outcomes)


def test_the_command_prints_the_table(quickstart):
    """`turnwise quickstart` on the finished runs: every stage cached, the table printed; bad seeds: one line."""
    from typer.testing import CliRunner

    from turnwise.cli.main import app

    args = ["quickstart", str(quickstart.out_dir), "--fast", "--seeds", "0,1", *[f"--set={s}" for s in TINY]]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert quickstart.table.rstrip() in result.output and "results.html" in result.output
    bad = CliRunner().invoke(app, ["quickstart", str(quickstart.out_dir), "--seeds", "zero"])
    assert bad.exit_code == 2 and "expected comma-separated integers" in bad.output
