"""What CI runs: `turnwise run recipes/quickstart.yaml --fast`, end to end through the command, twice."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
STAGES = 22


def turnwise_run(*args: str) -> tuple[str, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "turnwise.cli.main", "run", "recipes/quickstart.yaml", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr, time.perf_counter() - start


def test_the_fast_quickstart_recipe_runs_end_to_end_then_is_cached(tmp_path):
    out = tmp_path / "fast"
    output, _ = turnwise_run("--fast", "--set", f"out_dir={out}")
    assert f"{STAGES} stages ran, 0 cached" in output, output
    assert f"[{STAGES - 1}/{STAGES}] eval: ran" in output and "test turns right" in output
    report = (out / "report.md").read_text(encoding="utf-8")
    assert report.count("stage.json)") == STAGES and "## Results: eval" in report
    for model in ("SFT", "SFT + more SFT", "SFT + CaPO-DPO", "SFT + best-of-N DPO",
                  "SFT + on-policy CaPO-DPO, round 2"):
        assert f"| {model} |" in report

    output, seconds = turnwise_run("--fast", "--set", f"out_dir={out}")
    assert f"0 stages ran, {STAGES} cached" in output, output
    assert seconds < 30  # the interpreter's start-up and imports, nothing else
    report = (out / "report.md").read_text(encoding="utf-8")

    output, _ = turnwise_run("--fast", "--set", f"out_dir={out}", "--set", "train_dpo_capo.beta=0.2", "--dry-run")
    assert "beta 0.5 → 0.2" in output
    assert (out / "report.md").read_text(encoding="utf-8") == report  # a dry run writes nothing
