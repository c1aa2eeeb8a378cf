"""The resumable record store and the run manifest."""

from __future__ import annotations

import json

import pytest

from turnwise.errors import InputError
from turnwise.records import RecordStore, RunManifest, make_record, manifest_path, read_stage_output


def rec(i: int, status: str = "ok") -> dict:
    return make_record(f"r{i}", status, {"x": i}, reason=None if status == "ok" else "because")


def test_make_record_layout():
    assert make_record("a", "failed", {"x": 1}, reason="timeout", meta={"k": 2}) == {
        "id": "a", "status": "failed", "reason": "timeout", "x": 1, "meta": {"k": 2}
    }
    with pytest.raises(ValueError, match="needs a reason"):
        make_record("a", "filtered", {})
    with pytest.raises(ValueError, match="status"):
        make_record("a", "done", {})


def test_appends_are_flushed_and_resumed(tmp_path):
    path = tmp_path / "out.jsonl"
    store = RecordStore(path)
    store.append(rec(1))
    store.append(rec(2, "failed"))
    # flushed: visible before close
    assert len(path.read_text().splitlines()) == 2
    store.close()
    again = RecordStore(path)
    assert again.done == {"r1", "r2"} and again.resumed == 2
    assert again.counts == {"ok": 1, "failed": 1} and again.reasons == {"because": 1}
    with pytest.raises(ValueError, match="already"):
        again.append(rec(1))
    again.close()


def test_torn_last_line_is_dropped_not_duplicated(tmp_path):
    path = tmp_path / "out.jsonl"
    with RecordStore(path) as store:
        store.append(rec(1))
        store.append(rec(2))
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"id": "r3", "status": "o')  # a crash mid-write
    store = RecordStore(path)
    assert store.done == {"r1", "r2"} and store.repaired_bytes == len(b'{"id": "r3", "status": "o')
    store.append(rec(3))
    store.close()
    ids = [r["id"] for r in read_stage_output(path)]
    assert ids == ["r1", "r2", "r3"]


def test_retry_failed_forgets_failures(tmp_path):
    path = tmp_path / "out.jsonl"
    with RecordStore(path) as store:
        store.append(rec(1))
        store.append(rec(2, "failed"))
    with RecordStore(path, retry_failed=True) as store:
        assert store.done == {"r1"}
        store.append(rec(2))
    assert [r["status"] for r in read_stage_output(path)] == ["ok", "ok"]


def test_a_foreign_file_is_refused_with_its_line(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"id": "a", "status": "ok", "meta": {}}\n{"messages": []}\n')
    with pytest.raises(InputError, match=r"out.jsonl:2: not a turnwise record"):
        RecordStore(path)


def test_manifest_keeps_every_run(tmp_path):
    out = tmp_path / "out.jsonl"
    first = RunManifest(out, "generate", {"temperature": 0})
    assert json.loads(manifest_path(out).read_text())["runs"][0]["status"] == "running"
    first.finish("interrupted", {"ok": 3}, {"calls": 3})
    second = RunManifest(out, "generate", {"temperature": 0})
    second.finish("complete", {"ok": 5}, {"calls": 2})
    data = json.loads(manifest_path(out).read_text())
    assert [r["status"] for r in data["runs"]] == ["interrupted", "complete"]
    assert data["counts"] == {"ok": 5} and data["versions"]["turnwise"]
    RunManifest(out, "generate", {})  # a run that is killed before finish()
    third = RunManifest(out, "generate", {})
    assert [r["status"] for r in third.data["runs"]] == ["interrupted", "complete", "died", "running"]
    assert manifest_path(out).name == "out.manifest.json"


def test_atomic_writes_get_the_usual_permissions(tmp_path):
    import os

    from turnwise.records import atomic_write_text

    target = tmp_path / "x.json"
    atomic_write_text(target, "{}")
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
