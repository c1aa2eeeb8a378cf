"""`turnwise simulate` with the `openai` backend against a real OpenAI-compatible server (`transformers
serve` on a tiny model), alone and mixed with the in-process `local` backend; a re-run is free."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from turnwise.cli.main import app
from turnwise.records import read_stage_output
from turnwise.testing.transformers_server import serve_model

pytestmark = pytest.mark.integration

# A tiny random model writes noise; these filters would end every dialogue at once.
RELAXED = [x for f in ("too_short", "role_label", "answer", "language") for x in ("--disable-filter", f)]


@pytest.fixture(scope="module")
def served(tiny_model_dir, tmp_path_factory):
    with serve_model(tiny_model_dir, log_path=tmp_path_factory.mktemp("log") / "serve.log") as url:
        yield str(tiny_model_dir), url


def simulate(tmp_path, *extra: str) -> tuple[list[dict], dict]:
    seeds = tmp_path / "seeds.txt"
    seeds.write_text("Where is the red box?\nWhat did Alice paint?\nHow old is the dog?\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    args = ["simulate", "--seeds", str(seeds), "-o", str(out), "--turns", "3", "--min-turns", "1",
            "--mode", "prompted", "--user-max-tokens", "6", "--assistant-max-tokens", "6", "--concurrency", "4",
            "--cache", str(tmp_path / "cache.sqlite"), *RELAXED, *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return read_stage_output(out), json.loads((tmp_path / "out.manifest.json").read_text())


def test_openai_backend_against_transformers_serve(served, tmp_path):
    model, url = served
    records, manifest = simulate(tmp_path, "--user-model", model, "--assistant-model", model, "--base-url", url)
    assert sorted(r["id"] for r in records) == ["seeds-1", "seeds-2", "seeds-3"]
    assert {r["status"] for r in records} <= {"ok", "failed"}
    ok = [r for r in records if r["status"] == "ok"]
    assert ok and all(r["meta"]["models"]["user"] == f"openai:{model}" for r in ok)
    run = manifest["runs"][-1]
    assert run["status"] == "complete" and run["cost"]["assistant"]["calls"] >= 3
    assert run["cost"]["user"]["cached"] == run["cost"]["assistant"]["cached"] == 0

    # Every call of a second run into a fresh output is answered from the cache.
    (tmp_path / "out.jsonl").rename(tmp_path / "first.jsonl")
    (tmp_path / "out.manifest.json").unlink()
    again, manifest = simulate(tmp_path, "--user-model", model, "--assistant-model", model, "--base-url", url)
    cost = manifest["runs"][-1]["cost"]
    assert cost["user"]["calls"] == cost["user"]["cached"] and cost["assistant"]["calls"] == cost["assistant"]["cached"]
    first = {r["id"]: r["messages"] for r in read_stage_output(tmp_path / "first.jsonl")}
    assert {r["id"]: r["messages"] for r in again} == first


def test_local_user_model_with_an_api_assistant(served, tmp_path):
    model, url = served
    records, manifest = simulate(tmp_path, "--user-model", model, "--user-backend", "local",
                                 "--assistant-model", model, "--assistant-base-url", url)
    assert len(records) == 3
    assert manifest["config"]["models"]["user"]["backend"] == "local"
    assert manifest["config"]["models"]["assistant"]["backend"] == "openai"
    assert all(r["meta"]["models"] == {"user": f"local:{model}", "assistant": f"openai:{model}"} for r in records)
