"""Resumable JSON Lines output for every stage, and the run manifest written beside it.

A stage writes one record per line: ``{"id", "status", "reason"?, ...payload, "meta"}`` with status
``ok``, ``filtered`` or ``failed``. Each record is flushed as soon as it is written, so a crash or
Ctrl-C loses at most the records in flight. On restart the store reads what is there, repairs a torn
last line (a record cut off mid-write has no newline: it is dropped, never duplicated) and reports the
finished ids, which the stage then skips.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
import time
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

from turnwise.errors import InputError

log = logging.getLogger(__name__)

STATUSES = ("ok", "filtered", "failed")


def make_record(
    id: str, status: str, payload: dict[str, Any], *, reason: str | None = None, meta: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Build a record in the one layout every stage writes."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    if status != "ok" and not reason:
        raise ValueError(f"a {status} record needs a reason")
    record: dict[str, Any] = {"id": id, "status": status}
    if reason:
        record["reason"] = reason
    record.update(payload)
    record["meta"] = meta or {}
    return record


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs get the usual permissions
    os.replace(tmp, path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class RecordStore:
    """An append-only, resumable JSON Lines file of stage records.

    Args:
        path: the output file; created with its folder when missing.
        retry_failed: forget earlier ``failed`` records (they are removed from the file) so that
            this run tries them again.
    """

    def __init__(self, path: str | Path, *, retry_failed: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.repaired_bytes = 0
        records = self._load()
        if retry_failed and any(r["status"] == "failed" for r in records):
            records = [r for r in records if r["status"] != "failed"]
            atomic_write_text(self.path, "".join(_dumps(r) for r in records))
        self.done: set[str] = {r["id"] for r in records}
        self.counts: Counter[str] = Counter(r["status"] for r in records)
        self.reasons: Counter[str] = Counter(r.get("reason", "") for r in records if r["status"] != "ok")
        self.resumed = len(records)
        self.written = 0
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def _load(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            # A record cut off by a crash: drop the partial line so it is redone, not duplicated.
            self.repaired_bytes = len(data) - end
            log.warning("%s: dropped a torn last line (%d bytes) left by an interrupted run", self.path, end)
            with open(self.path, "r+b") as f:
                f.truncate(end)
        return _parse_lines(self.path, data[:end])

    def append(self, record: dict[str, Any]) -> None:
        """Write one record and flush it; a finished id is never written twice."""
        rid = record["id"]
        if rid in self.done:
            raise ValueError(f"record {rid!r} is already in {self.path}")
        self._file.write(_dumps(record))
        self._file.flush()
        self.done.add(rid)
        self.counts[record["status"]] += 1
        if record["status"] != "ok":
            self.reasons[record.get("reason", "")] += 1
        self.written += 1

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def _parse_lines(path: Path, data: bytes) -> list[dict[str, Any]]:
    records = []
    for line_no, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(path, line_no, f"not a turnwise record file (bad JSON: {exc})") from exc
        if not isinstance(record, dict) or "id" not in record or record.get("status") not in STATUSES:
            raise InputError(path, line_no, "not a turnwise record (needs 'id' and a 'status')")
        records.append(record)
    return records


def read_stage_output(path: str | Path) -> list[dict[str, Any]]:
    """Read a stage's output file (every line a record)."""
    return _parse_lines(Path(path), Path(path).read_bytes())


def manifest_path(output: str | Path) -> Path:
    """``out.jsonl`` → ``out.manifest.json``, beside the output."""
    output = Path(output)
    return output.with_name(output.stem + ".manifest.json")


def package_versions(names: tuple[str, ...] = ("torch", "transformers", "trl", "peft", "vllm", "aiohttp")) -> dict:
    """Versions of turnwise, Python and the installed heavy dependencies (not imported, only looked up)."""
    versions = {"turnwise": _version("turnwise"), "python": platform.python_version()}
    versions.update({name: v for name in names if (v := _version(name))})
    return versions


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


class RunManifest:
    """The resolved config, versions, counts, timings and cost of a stage, kept beside its output.

    Each run (the first and every resume) appends an entry to ``runs``; the file is rewritten
    atomically at the start and the end of a run.

    Args:
        output: the stage's output file.
        stage: the stage's name.
        config: the resolved settings (no secrets: specs hold key variable names, never keys).
    """

    def __init__(self, output: str | Path, stage: str, config: dict[str, Any]):
        self.path = manifest_path(output)
        previous = json.loads(self.path.read_text(encoding="utf-8")) if self.path.exists() else {}
        self.data: dict[str, Any] = {
            "stage": stage,
            "output": str(output),
            "config": config,
            "versions": package_versions(),
            "runs": previous.get("runs", []),
        }
        for run in self.data["runs"]:
            if run.get("status") == "running":  # that process never reached finish(): killed or crashed
                run["status"] = "died"
        self._start = time.time()
        self._run: dict[str, Any] = {"started": _iso(self._start), "status": "running"}
        self.data["runs"].append(self._run)
        self.save()

    def finish(self, status: str, counts: dict[str, Any], cost: dict[str, Any], **extra: Any) -> None:
        """Record how the run ended (``complete``, ``interrupted``, ``error``), its counts and cost."""
        end = time.time()
        self._run.update(
            {"finished": _iso(end), "wall_s": round(end - self._start, 3), "status": status, "cost": cost}
        )
        self.data["counts"] = counts
        self.data.update(extra)
        self.save()

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps(self.data, indent=2, ensure_ascii=False, default=str) + "\n")


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
