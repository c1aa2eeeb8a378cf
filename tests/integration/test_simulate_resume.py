"""Reliability of `turnwise simulate` against the scripted OpenAI-compatible server (``--reply question``).

- kill -9 in the middle of a run of 300 dialogues x 8 turns (4,500 dependent calls), then the same command:
  every dialogue is there once, and the second run pays only for the calls the first had not finished
  (the calls in flight at the kill, at most ``--concurrency``, are the only ones paid twice);
- 20% injected faults: every dialogue ends ok or failed with the reason, none lost, none duplicated.
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

from turnwise.models.base import GenerationSettings, ModelSpec, load_model
from turnwise.records import RecordStore, read_stage_output
from turnwise.simulate.engine import SimulateConfig, run_simulate
from turnwise.simulate.seeds import Seed
from turnwise.testing.scripted_runner import serve_in_thread, spawn_server
from turnwise.testing.scripted_server import ServerConfig

pytestmark = pytest.mark.integration

N, TURNS, CONCURRENCY = 300, 8, 64


def served(base_url: str) -> int:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats", timeout=10) as resp:
        return json.loads(resp.read())["served"]


def fresh_calls(record: dict) -> int:
    cost = record["meta"]["cost"]
    return sum(cost[role]["calls"] - cost[role]["cached"] for role in ("user", "assistant"))


def all_calls(record: dict) -> int:
    return sum(record["meta"]["cost"][role]["calls"] for role in ("user", "assistant"))


def test_kill9_mid_run_then_resume_pays_only_for_unfinished_calls(tmp_path: Path):
    seeds, out = tmp_path / "seeds.txt", tmp_path / "out.jsonl"
    seeds.write_text("".join(f"How would you plan project {i}?\n" for i in range(N)), encoding="utf-8")
    with spawn_server(ServerConfig(latency_ms=20, jitter_ms=10, capacity=CONCURRENCY, reply="question")) as url:
        cmd = [sys.executable, "-m", "turnwise.cli.main", "simulate", "--seeds", str(seeds), "-o", str(out),
               "--user-model", "scripted", "--assistant-model", "scripted", "--base-url", url,
               "--concurrency", str(CONCURRENCY), "--max-in-flight", "128", "--turns", str(TURNS),
               "--cache", str(tmp_path / "cache.sqlite")]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        # Two thirds in: the first dialogues are written, the next ones are half-way through their turns.
        while served(url) < 2 * N * (2 * TURNS - 1) // 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, f"run ended before the kill: {proc.stderr.read().decode()[-2000:]}"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        done_before = set(RecordStore(out).done)
        calls_before = served(url)
        assert 0 < len(done_before) < N

        rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        calls_after = served(url) - calls_before

    records = read_stage_output(out)
    assert sorted(r["id"] for r in records) == sorted(f"seeds-{i}" for i in range(1, N + 1))
    assert all(r["status"] == "ok" and len(r["messages"]) == 2 * TURNS for r in records)
    resumed = [r for r in records if r["id"] not in done_before]
    # Each call of the second run either came from the cache or was sent once (no faults here) ...
    assert calls_after == sum(fresh_calls(r) for r in resumed)
    assert sum(r["meta"]["cost"]["user"]["cached"] + r["meta"]["cost"]["assistant"]["cached"] for r in resumed) > 0
    # ... and the only calls paid twice are those in flight when the first run was killed.
    repaid = calls_before + calls_after - sum(all_calls(r) for r in records)
    assert 0 <= repaid <= CONCURRENCY
    manifest = json.loads((tmp_path / "out.manifest.json").read_text())
    assert [run["status"] for run in manifest["runs"]] == ["died", "complete"]
    assert manifest["stats"]["dialogues"] == N and manifest["stats"]["turns_per_dialogue"] == TURNS


async def test_twenty_percent_faults_every_dialogue_accounted_for(tmp_path: Path):
    n = 200
    config = ServerConfig(latency_ms=2, jitter_ms=1, capacity=64, fault_rate=0.2, slow_s=1.0, retry_after_s=0.01,
                          reply="question", seed=3)
    with serve_in_thread(config) as server:
        spec = ModelSpec("scripted", backend="openai", base_urls=[server.base_url], concurrency=64,
                         timeout_s=0.3, max_retries=2, backoff_s=0.01)
        model = load_model(spec)
        cfg = SimulateConfig(turns=4, user_settings=GenerationSettings(max_tokens=32),
                             assistant_settings=GenerationSettings(max_tokens=32))
        try:
            with RecordStore(tmp_path / "out.jsonl") as store:
                await run_simulate((Seed(f"s{i}", f"Question {i}: how does a cache work?") for i in range(n)),
                                   model, model, store, cfg)
        finally:
            await model.aclose()
        faults = server.stats()["faults"]
    records = read_stage_output(tmp_path / "out.jsonl")
    assert sorted(r["id"] for r in records) == sorted(f"s{i}" for i in range(n))
    statuses = Counter(r["status"] for r in records)
    assert set(statuses) <= {"ok", "failed"} and statuses["ok"] >= 0.9 * n
    for r in records:
        if r["status"] == "failed":
            assert r["reason"].startswith("turn ") and "after 3 attempts" in r["reason"], r["reason"]
        else:
            assert r["meta"]["turns"] == 4 and len(r["messages"]) == 8
    assert sum(faults.values()) > 0.1 * sum(all_calls(r) for r in records)
