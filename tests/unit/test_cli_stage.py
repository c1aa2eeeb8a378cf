"""The run bookkeeping every command shares: how a run ends is written to its manifest, models close."""

from __future__ import annotations

import json

import pytest

from turnwise.cli.stage import open_models, stage_run
from turnwise.models.base import ModelSpec
from turnwise.records import RecordStore, RunManifest, make_record, manifest_path


def _finish(tmp_path, body) -> dict:
    out = tmp_path / "out.jsonl"
    store = RecordStore(out)
    with stage_run(store, RunManifest(out, "test", {})) as run:
        store.append(make_record("a", "ok", {}))
        body(run)
    return json.loads(manifest_path(out).read_text())


def test_a_completed_run_writes_its_cost_and_counts(tmp_path):
    data = _finish(tmp_path, lambda run: run.complete({"calls": 3}))
    assert data["runs"][-1]["status"] == "complete" and data["runs"][-1]["cost"] == {"calls": 3}
    assert data["counts"] == {"ok": 1}


def test_a_crash_is_an_error_and_ctrl_c_is_interrupted(tmp_path):
    def crash(run):
        raise RuntimeError("boom")

    def ctrl_c(run):
        raise KeyboardInterrupt

    with pytest.raises(RuntimeError):
        _finish(tmp_path / "a", crash)
    assert json.loads(manifest_path(tmp_path / "a" / "out.jsonl").read_text())["runs"][-1]["status"] == "error"
    with pytest.raises(KeyboardInterrupt):
        _finish(tmp_path / "b", ctrl_c)
    assert json.loads(manifest_path(tmp_path / "b" / "out.jsonl").read_text())["runs"][-1]["status"] == "interrupted"


async def test_open_models_shares_a_spec_keeps_none_and_closes(tmp_path, monkeypatch):
    from turnwise.testing import fake

    closed = []

    async def aclose(self):
        closed.append(self)

    monkeypatch.setattr(fake.FakeChatModel, "aclose", aclose)
    # a `module:Class` backend is built as Class(spec); the fake takes the spec as its (unused) reply
    spec = ModelSpec("m", backend="turnwise.testing.fake:FakeChatModel")
    async with open_models([spec, None, spec], tmp_path / "c.sqlite") as (a, none, b):
        assert a is b and none is None and a.backend == "fake"
    assert len(closed) == 1
