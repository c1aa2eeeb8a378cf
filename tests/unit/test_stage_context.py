"""The one stage context a command and a recipe stage both run in: how a run ends is written to its manifest
(Ctrl-C and cancellation alike), where the files go, and models shared between roles and closed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from turnwise.models.base import ModelSpec
from turnwise.records import make_record, manifest_path
from turnwise.stage.context import Layout, ResolvedModel, StageContext, StageResult
from turnwise.stage.spec import Output, Port, Stage

STAGE = Stage("fake", "A fake stage.", dict, lambda ctx: StageResult({}),
              models=(Port("a", "a model"), Port("b", "another", required=False), Port("c", "a third")),
              outputs=(Output("pairs", "pairs.jsonl"), Output("records", "records.jsonl")))


def context(layout: Layout, models: dict[str, ModelSpec] | None = None) -> StageContext:
    resolved = {role: ResolvedModel(spec.model, spec) for role, spec in (models or {}).items()}
    return StageContext(STAGE, "fake", layout, {}, {}, resolved, {}, layout.dir / "cache.sqlite")


def _finish(tmp_path: Path, body) -> dict:
    ctx = context(Layout(tmp_path))
    with ctx.records("records") as run:
        run.store.append(make_record("a", "ok", {}))
        body(run)
    return json.loads(manifest_path(tmp_path / "records.jsonl").read_text())


def test_a_completed_run_writes_its_cost_and_counts(tmp_path):
    data = _finish(tmp_path, lambda run: setattr(run, "cost", {"calls": 3}))
    assert data["runs"][-1]["status"] == "complete" and data["runs"][-1]["cost"] == {"calls": 3}
    assert data["counts"] == {"ok": 1} and data["config"]["stage"] == "fake"


@pytest.mark.parametrize(("error", "status"), [(RuntimeError("boom"), "error"), (KeyboardInterrupt(), "interrupted"),
                                               (asyncio.CancelledError(), "interrupted")])
def test_a_crash_is_an_error_and_ctrl_c_or_cancellation_is_interrupted(tmp_path, error, status):
    def fail(run):
        raise error

    with pytest.raises(type(error)):
        _finish(tmp_path, fail)
    assert json.loads(manifest_path(tmp_path / "records.jsonl").read_text())["runs"][-1]["status"] == status


def test_a_command_writes_beside_its_out_and_a_recipe_stage_into_its_folder(tmp_path):
    command = context(Layout.for_command(STAGE, tmp_path / "runs" / "capo.jsonl"))
    assert command.output("pairs") == tmp_path / "runs" / "capo.jsonl"
    assert command.output("records") == tmp_path / "runs" / "capo.records.jsonl"
    assert command.outputs() == {"pairs": "capo.jsonl", "records": "capo.records.jsonl"}
    stage = context(Layout(tmp_path / "s-0123456789ab"))
    assert stage.output("records") == tmp_path / "s-0123456789ab" / "records.jsonl"
    assert stage.outputs() == {"pairs": "pairs.jsonl", "records": "records.jsonl"}
    folder = Stage("t", "A trainer.", dict, STAGE.run, outputs=(Output("model", "model", folder=True),
                                                                Output("pairs", "pairs.jsonl")))
    model = StageContext(folder, "t", Layout.for_command(folder, tmp_path / "dpo"), {}, {}, {}, {}, None)
    assert (model.output("model"), model.output("pairs")) == (tmp_path / "dpo", tmp_path / "dpo" / "pairs.jsonl")


async def test_open_models_shares_a_spec_keeps_none_and_closes(tmp_path, monkeypatch):
    from turnwise.testing import fake

    closed = []

    async def aclose(self):
        closed.append(self)

    monkeypatch.setattr(fake.FakeChatModel, "aclose", aclose)
    spec = ModelSpec("m", backend="turnwise.testing.fake:EchoBackend")
    ctx = context(Layout(tmp_path), {"a": spec, "c": spec})
    async with ctx.open_models("a", "b", "c") as (a, none, c):
        assert a is c and none is None and a.backend == "echo"  # one backend for two roles with one spec
    other = context(Layout(tmp_path), {"a": spec, "c": ModelSpec("n", backend="turnwise.testing.fake:EchoBackend")})
    async with other.open_models("a", "c") as (a, c):
        assert a is not c
    assert len(closed) == 3
