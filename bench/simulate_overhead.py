"""python bench/simulate_overhead.py

How close does self-play synthesis (``turnwise.simulate``) come to the best any client can do, and how
much memory does a long run hold?

The scripted OpenAI-compatible server runs as its own process (100 ± 80 ms per request, 64 in service, no
faults, ``--reply question`` so that simulated user turns pass the filters). 400 seed first turns are
grown to 8 answers each: 7 simulated user turns and 8 answers, 15 dependent calls per dialogue, 6,000
calls, at concurrency 64 (one OpenAI backend behind a fresh response cache, shared by both roles). The
bound is what a perfect client would need: the server's summed latencies (read from ``/stats``) divided
by the requests it serves at once. The ratio wall / bound is the cost of the engine, the filters, the
cache and the event loop; the target is ratio <= 1.15.

The same workload also runs as a lock-step loop over plain aiohttp (no turnwise, no cache, no filters):
every dialogue's turn t is sent as one wave, and turn t + 1 waits for the wave's slowest call.

``--process`` also runs the same workload as the command a user types, in its own process and timed from
its start to its exit (start-up, imports, seed reading, rendering, record writing included): ``turnwise
simulate --mode prompted`` with the filters off and ``--no-cache``, against the same server; its ratio is
``process_ratio`` (the issue's target: <= 1.15). The child runs with Python's default bytecode caching
(``PYTHONDONTWRITEBYTECODE`` is removed from its environment) after one untimed two-seed run of the same
command, so it starts as a user's second run does, with turnwise's modules already compiled (a first run
on a fresh install compiles them: +0.15 s here).

Then a separate process runs ``turnwise simulate`` on 10,000 seeds (8 turns) against a fast server
(1 ms) and its peak RSS is read from the kernel (``wait4``): seeds stream in and records stream out,
so memory must not grow with the number of dialogues (target < 500 MB).

The last line is key=value pairs for scripts::

    ratio=1.04 rss_mb=95.2 lockstep_ratio=1.23 wall_s=9.8 bound_s=9.4 calls=6000 ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp

from turnwise.models.base import GenerationSettings, ModelSpec
from turnwise.models.cache import CachedChatModel, ResponseCache
from turnwise.models.openai_http import OpenAIChatModel
from turnwise.records import RecordStore
from turnwise.simulate.engine import SimulateConfig, run_simulate
from turnwise.simulate.prompts import flip_roles, simulator_prompt
from turnwise.simulate.seeds import Seed
from turnwise.testing.scripted_runner import spawn_server
from turnwise.testing.scripted_server import ServerConfig

USER = GenerationSettings(temperature=1.0, top_p=0.9, max_tokens=64)
ASSISTANT = GenerationSettings(temperature=0.7, max_tokens=128)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Overhead and memory of self-play simulation against a scripted server.")
    p.add_argument("--dialogues", type=int, default=400)
    p.add_argument("--turns", type=int, default=8)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--max-in-flight", type=int, default=1024, help="dialogues at once (the CLI's default)")
    p.add_argument("--latency-ms", type=float, default=100.0)
    p.add_argument("--jitter-ms", type=float, default=80.0)
    p.add_argument("--capacity", type=int, default=64, help="requests the server serves at once")
    p.add_argument("--rss-dialogues", type=int, default=10_000, help="0 skips the memory run")
    p.add_argument("--rss-latency-ms", type=float, default=1.0)
    p.add_argument("--no-baseline", action="store_true", help="skip the lock-step aiohttp run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--process", action="store_true", help="also time `turnwise simulate` as a whole process")
    return p.parse_args()


def seed_texts(tag: str, n: int) -> list[str]:
    return [f"[{tag}] Question {i}: how would you plan project {i * 7919 % 10007}?" for i in range(n)]


def server_call(root: str, path: str, method: str = "GET") -> dict:
    req = urllib.request.Request(root + path, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


async def run_turnwise(base_url: str, texts: list[str], args: argparse.Namespace, work: Path) -> dict:
    """The simulate stage core, as the CLI runs it: one backend for both roles, behind the response cache."""
    spec = ModelSpec(model="scripted", backend="openai", base_urls=[base_url], concurrency=args.concurrency,
                     timeout_s=60, max_retries=2, backoff_s=0.1)
    cache = ResponseCache(work / "responses.sqlite")
    model = CachedChatModel(OpenAIChatModel(spec), cache)
    cfg = SimulateConfig(turns=args.turns, min_turns=args.turns, user_settings=USER, assistant_settings=ASSISTANT,
                         seed=args.seed, max_in_flight=args.max_in_flight)
    seeds = (Seed(f"d{i}", text) for i, text in enumerate(texts))
    try:
        with RecordStore(work / "dialogues.jsonl") as store:
            result = await run_simulate(seeds, model, model, store, cfg)
    finally:
        await model.aclose()
        cache.close()
    user, assistant = result.user_cost, result.assistant_cost
    return {"calls": user.calls + assistant.calls, "failed": user.failed + assistant.failed,
            "ok": result.status["ok"], "regenerations": sum(result.filters.values())}


async def run_lockstep(base_url: str, texts: list[str], args: argparse.Namespace) -> dict:
    """Plain aiohttp, no turnwise: every dialogue's next call goes out as one wave per turn and role."""
    url = base_url + "/chat/completions"
    prompt = simulator_prompt("ask", "en")
    dialogues = [[{"role": "user", "content": text}] for text in texts]
    calls = failed = 0
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector, headers={"Content-Type": "application/json"}) as s:

        async def post(messages: list[dict], settings: GenerationSettings) -> str:
            body = {"model": "scripted", "temperature": settings.temperature, "top_p": settings.top_p,
                    "max_tokens": settings.max_tokens, "messages": messages}
            async with s.post(url, data=json.dumps(body).encode()) as resp:
                data = json.loads(await resp.read())
            return data["choices"][0]["message"]["content"] if resp.status == 200 else ""

        for turn in range(args.turns):
            if turn:
                asked = await asyncio.gather(*(post(flip_roles(d, prompt), USER) for d in dialogues))
                for d, text in zip(dialogues, asked, strict=True):
                    d.append({"role": "user", "content": text})
            answers = await asyncio.gather(*(post(d, ASSISTANT) for d in dialogues))
            for d, text in zip(dialogues, answers, strict=True):
                d.append({"role": "assistant", "content": text})
            calls += len(dialogues) * (2 if turn else 1)
            failed += sum(not text for text in answers)
    return {"calls": calls, "failed": failed, "ok": len(dialogues), "regenerations": 0}


def measure(root: str, slots: int, run) -> dict:
    """Run one phase against a freshly reset server: wall time, client CPU, the bound and the ratio."""
    server_call(root, "/stats/reset", "POST")
    cpu0, t0 = time.process_time(), time.perf_counter()
    row = run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    stats = server_call(root, "/stats")
    bound = stats["latency_sum_s"] / slots
    return {**row, "wall_s": wall, "bound_s": bound, "ratio": wall / bound, "served": stats["served"],
            "cpu_ms_per_call": 1000 * cpu / max(1, row["calls"])}


def process_env() -> dict[str, str]:
    """The child's environment: Python's default bytecode caching (a sandbox may set PYTHONDONTWRITEBYTECODE)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def simulate_command(base_url: str, seeds: Path, out: Path, turns: int, args: argparse.Namespace) -> list[str]:
    """``turnwise simulate`` as a user types it: prompted mode, filters off, no cache."""
    from turnwise.simulate.filters import OPTIONAL_REASONS

    return [sys.executable, "-m", "turnwise.cli.main", "simulate", "--seeds", str(seeds), "-o", str(out),
            "--mode", "prompted", "--user-model", "scripted", "--assistant-model", "scripted", "--base-url", base_url,
            "--concurrency", str(args.concurrency), "--turns", str(turns), "--min-turns", str(turns),
            "--max-in-flight", str(args.max_in_flight), "--no-cache", "--disable-filter", ",".join(OPTIONAL_REASONS),
            "--user-max-tokens", "64", "--assistant-max-tokens", "128", "--seed", str(args.seed)]


def run_command(cmd: list[str]) -> None:
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=process_env())
    if done.returncode:
        raise RuntimeError(f"turnwise simulate failed ({done.returncode}): {done.stderr[-2000:]}")


def warm_up_process(base_url: str, args: argparse.Namespace, work: Path) -> None:
    """One untimed run of the command on two seeds: a user's second run finds turnwise's modules compiled."""
    seeds = work / "warm-up-seeds.txt"
    seeds.write_text("\n".join(seed_texts("warm-up", 2)) + "\n", encoding="utf-8")
    run_command(simulate_command(base_url, seeds, work / "warm-up.jsonl", 1, args))


def run_process(base_url: str, texts: list[str], args: argparse.Namespace, work: Path) -> dict:
    """``turnwise simulate`` on the workload, timed by :func:`measure` from the process's start to its exit."""
    seeds = work / "process-seeds.txt"
    seeds.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = work / "process.jsonl"
    run_command(simulate_command(base_url, seeds, out, args.turns, args))
    # The counts come from the small manifest, not by parsing every record inside the timed region.
    manifest = json.loads(out.with_suffix(".manifest.json").read_text(encoding="utf-8"))
    counts, cost = manifest["counts"], manifest["runs"][-1]["cost"]
    return {"calls": sum(role["calls"] for role in cost.values()), "failed": counts.get("failed", 0),
            "ok": counts.get("ok", 0), "regenerations": 0}


def rss_run(args: argparse.Namespace, work: Path) -> dict:
    """``turnwise simulate`` on many seeds in its own process; its peak RSS from the kernel."""
    seeds = work / "seeds.txt"
    seeds.write_text("\n".join(seed_texts("rss", args.rss_dialogues)) + "\n", encoding="utf-8")
    config = ServerConfig(latency_ms=args.rss_latency_ms, jitter_ms=0, capacity=args.capacity, reply="question")
    with spawn_server(config) as base_url:
        cmd = [sys.executable, "-m", "turnwise.cli.main", "simulate", "--seeds", str(seeds),
               "-o", str(work / "rss.jsonl"), "--user-model", "scripted", "--assistant-model", "scripted",
               "--base-url", base_url, "--concurrency", str(args.concurrency), "--turns", str(args.turns),
               "--cache", str(work / "rss.sqlite"), "--user-max-tokens", "64", "--assistant-max-tokens", "128"]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, not the server's
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode:
        raise RuntimeError(f"the memory run failed ({proc.returncode}): {err[-2000:]}")
    with open(work / "rss.jsonl", encoding="utf-8") as handle:
        lines = sum(1 for _ in handle)
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    rss_mb = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return {"dialogues": lines, "rss_mb": rss_mb, "wall_s": wall}


def main() -> None:
    args = parse_args()
    config = ServerConfig(latency_ms=args.latency_ms, jitter_ms=args.jitter_ms, capacity=args.capacity,
                          seed=args.seed, reply="question")
    slots = min(args.capacity, args.concurrency)
    rows: dict[str, dict] = {}
    with spawn_server(config) as base_url, tempfile.TemporaryDirectory() as tmp:
        root, work = base_url.removesuffix("/v1"), Path(tmp)
        texts = seed_texts("turnwise", args.dialogues)
        rows["turnwise simulate"] = measure(root, slots, lambda: asyncio.run(run_turnwise(base_url, texts, args, work)))
        if args.process:
            texts = seed_texts("process", args.dialogues)
            warm_up_process(base_url, args, work)
            rows["turnwise simulate (process)"] = measure(root, slots, lambda: run_process(base_url, texts, args, work))
        if not args.no_baseline:
            texts = seed_texts("lockstep", args.dialogues)
            rows["lock-step aiohttp"] = measure(root, slots, lambda: asyncio.run(run_lockstep(base_url, texts, args)))
        memory = rss_run(args, work) if args.rss_dialogues else None
    report(args, rows, memory)


def report(args: argparse.Namespace, rows: dict[str, dict], memory: dict | None) -> None:
    print(f"{args.dialogues} dialogues x {args.turns} turns ({2 * args.turns - 1} calls each) at concurrency "
          f"{args.concurrency}, {args.max_in_flight} dialogues in flight; server {args.latency_ms:g} ± "
          f"{args.jitter_ms:g} ms, {args.capacity} in service")
    print(f"{'client':<28}{'calls':>7}{'wall s':>8}{'bound s':>9}{'ratio':>7}{'cpu ms/call':>13}{'ok':>6}{'regen':>7}")
    for name, r in rows.items():
        print(f"{name:<28}{r['calls']:>7}{r['wall_s']:>8.2f}{r['bound_s']:>9.2f}{r['ratio']:>7.3f}"
              f"{r['cpu_ms_per_call']:>13.3f}{r['ok']:>6}{r['regenerations']:>7}")
    if memory:
        print(f"memory run: {memory['dialogues']} dialogues in {memory['wall_s']:.1f} s, "
              f"peak RSS {memory['rss_mb']:.1f} MB ({args.rss_latency_ms:g} ms server)")
    tw = rows["turnwise simulate"]
    tail = f"ratio={tw['ratio']:.3f}"
    tail += f" rss_mb={memory['rss_mb']:.1f}" if memory else " rss_mb=nan"
    if "turnwise simulate (process)" in rows:
        tail += f" process_ratio={rows['turnwise simulate (process)']['ratio']:.3f}"
    if "lock-step aiohttp" in rows:
        tail += f" lockstep_ratio={rows['lock-step aiohttp']['ratio']:.3f}"
    tail += (f" wall_s={tw['wall_s']:.3f} bound_s={tw['bound_s']:.3f} calls={tw['calls']} failed={tw['failed']}"
             f" client_cpu_ms_per_call={tw['cpu_ms_per_call']:.3f}")
    print(tail)


if __name__ == "__main__":
    main()
