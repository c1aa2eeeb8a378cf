"""Record-level reliability of `turnwise generate` against the scripted OpenAI-compatible server.

- kill -9 in the middle of a 1,000-record run, then the same command again: exactly 1,000 records, no
  duplicate ids, and the second run pays only for what the first had not finished;
- 20% injected faults: every record ends ok or failed with a reason, none lost, none duplicated.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from turnwise.data.schema import Conversation
from turnwise.generate.core import run_generate
from turnwise.models.base import GenerationSettings, ModelSpec, load_model
from turnwise.records import RecordStore, read_stage_output
from turnwise.testing.scripted_runner import serve_in_thread, spawn_server
from turnwise.testing.scripted_server import ServerConfig

pytestmark = pytest.mark.integration

N = 1000


def write_inputs(path: Path, n: int = N) -> None:
    with path.open("w") as f:
        for i in range(n):
            record = {"id": f"c{i:04d}", "messages": [{"role": "user", "content": f"question number {i}"}],
                      "followups": [f"and what about {i}?"]}
            f.write(json.dumps(record) + "\n")


def server_stats(base_url: str) -> dict:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats", timeout=10) as resp:
        return json.loads(resp.read())


def count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_kill9_mid_run_then_resume(tmp_path):
    inputs, out, cache = tmp_path / "in.jsonl", tmp_path / "out.jsonl", tmp_path / "cache.sqlite"
    write_inputs(inputs)
    with spawn_server(ServerConfig(latency_ms=20, jitter_ms=10, capacity=64)) as url:
        cmd = [sys.executable, "-m", "turnwise.cli.main", "generate", str(inputs), str(out), "--model", "scripted",
               "--base-url", url, "--cache", str(cache), "--concurrency", "64", "--max-in-flight", "64",
               "--temperature", "0", "--max-tokens", "16"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while count_lines(out) < 300 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, f"run ended before the kill: {proc.stderr.read().decode()[-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        finished_before = len(RecordStore(out).done)
        calls_before = server_stats(url)["served"]
        assert 300 <= finished_before < N

        rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        calls_after = server_stats(url)["served"] - calls_before

    records = read_stage_output(out)
    ids = [r["id"] for r in records]
    assert len(ids) == N and len(set(ids)) == N
    assert all(r["status"] == "ok" and len(r["messages"]) == 4 for r in records)
    # Each dialogue is two calls. The rerun pays at most for the dialogues the first run had not written;
    # calls that finished but whose record was not yet written are answered from the cache.
    assert calls_after <= 2 * (N - finished_before)
    cached = sum(r["meta"]["cost"]["cached"] for r in records)
    assert cached == 2 * N - sum(r["meta"]["cost"]["calls"] - r["meta"]["cost"]["cached"] for r in records)
    manifest = json.loads((tmp_path / "out.manifest.json").read_text())
    assert [run["status"] for run in manifest["runs"]] == ["died", "complete"]


async def test_twenty_percent_faults_every_record_accounted_for(tmp_path):
    conversations = [Conversation(f"c{i:04d}", [{"role": "user", "content": f"question {i}"}]) for i in range(N)]
    config = ServerConfig(latency_ms=2, jitter_ms=1, capacity=64, fault_rate=0.2, slow_s=1.0, retry_after_s=0.01)
    with serve_in_thread(config) as server:
        spec = ModelSpec("scripted", backend="openai", base_urls=[server.base_url], concurrency=64,
                         timeout_s=0.3, max_retries=2, backoff_s=0.01)
        model = load_model(spec)
        with RecordStore(tmp_path / "out.jsonl") as store:
            await run_generate(conversations, model, store, GenerationSettings(temperature=0, max_tokens=8),
                               max_in_flight=128)
        await model.aclose()
    records = read_stage_output(tmp_path / "out.jsonl")
    ids = [r["id"] for r in records]
    assert len(ids) == N and len(set(ids)) == N
    statuses = Counter(r["status"] for r in records)
    assert set(statuses) <= {"ok", "failed"} and statuses["ok"] > 0.95 * N
    for r in records:
        if r["status"] == "failed":
            assert r["reason"].startswith("turn 0: ") and "after 3 attempts" in r["reason"]
        else:
            assert r["messages"][-1]["content"] == f"reply to: question {int(r['id'][1:])}"
