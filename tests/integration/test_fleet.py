"""A fleet of three OpenAI-compatible servers where one dies mid-run and another turns slow.

`turnwise generate` runs as a process against three scripted servers (each its own process on loopback).
Once a quarter of the dialogues are written, one server is killed (SIGKILL: in-flight requests see their
connection drop, later ones are refused) and another turns eight times slower. The run must finish with
every dialogue answered exactly once: failed attempts retried on a healthy server, the dead one benched,
the slow one given less work by in-flight routing, and the traffic per server in the manifest.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pytest

from turnwise.records import read_stage_output
from turnwise.testing.scripted_runner import spawn_server_process
from turnwise.testing.scripted_server import ServerConfig

pytestmark = pytest.mark.integration

N = 600  # dialogues, two calls each


def _post(base_url: str, path: str, payload: dict) -> dict:
    request = urllib.request.Request(base_url.removesuffix("/v1") + path, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def _stats(base_url: str) -> dict:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats", timeout=10) as resp:
        return json.loads(resp.read())


def test_one_server_killed_and_one_slowed_mid_run(tmp_path: Path):
    inputs, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    with inputs.open("w") as f:
        for i in range(N):
            f.write(json.dumps({"id": f"c{i:04d}", "messages": [{"role": "user", "content": f"question {i}"}],
                                "followups": [f"and what about {i}?"]}) + "\n")
    config = ServerConfig(latency_ms=50, jitter_ms=20, capacity=8)
    with ExitStack() as stack:
        (dead, dead_proc), (slow, _), (healthy, _) = (stack.enter_context(spawn_server_process(config))
                                                       for _ in range(3))
        cmd = [sys.executable, "-m", "turnwise.cli.main", "generate", str(inputs), str(out), "--model", "scripted",
               "--base-url", dead, "--base-url", slow, "--base-url", healthy, "--concurrency", "8",
               "--max-in-flight", "64", "--timeout", "10", "--max-retries", "5", "--no-cache",
               "--temperature", "0", "--max-tokens", "16"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while (out.read_bytes().count(b"\n") if out.exists() else 0) < N // 4 and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, f"the run ended before the kill: {proc.stderr.read()[-2000:]}"
        os.kill(dead_proc.pid, signal.SIGKILL)
        assert _post(slow, "/config", {"latency_ms": 400, "jitter_ms": 0})["latency_ms"] == 400
        written_at_kill = out.read_bytes().count(b"\n")
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-2000:]
        assert "Traceback" not in stderr
        served = {url: _stats(url) for url in (slow, healthy)}

    records = read_stage_output(out)
    ids = [r["id"] for r in records]
    assert sorted(ids) == [f"c{i:04d}" for i in range(N)]  # every dialogue, none twice
    assert all(r["status"] == "ok" and len(r["messages"]) == 4 for r in records)
    assert N // 4 <= written_at_kill < N

    traffic = json.loads((tmp_path / "out.manifest.json").read_text())["traffic"]["model"]
    servers = traffic["servers"]
    assert set(servers) == {dead, slow, healthy}
    assert sum(s["calls"] for s in servers.values()) == traffic["http_calls"]
    assert servers[dead]["failed"] > 0 and servers[dead]["benched"] >= 1  # its failures benched it
    assert servers[slow]["failed"] == servers[healthy]["failed"] == 0
    assert servers[healthy]["calls"] > servers[slow]["calls"]  # routing by load: the slow one gets less
    assert traffic["http_calls"] - 2 * N == sum(traffic["retries_by_reason"].values()) > 0
    assert not traffic["failures_by_reason"]
    # No request answered twice: with no client timeouts, each of the 2N requests got exactly one answer,
    # on the dead server before it died or on one of the others.
    answered_by_dead = servers[dead]["calls"] - servers[dead]["failed"]
    assert all(s["max_successes_per_body"] <= 1 for s in served.values())
    assert served[slow]["served"] + served[healthy]["served"] + answered_by_dead == 2 * N
