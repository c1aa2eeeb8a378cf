"""python bench/backend_overhead.py

How close does the ``openai`` backend, behind the response cache, come to the best a client can do?

The scripted server runs as its own process (100 ± 80 ms per request, 64 in service, no faults), so
server and client use different cores. The bench sends ``--calls`` distinct conversations at
``--concurrency`` through ``CachedChatModel(OpenAIChatModel)`` with a fresh temporary cache (nothing
hits: this is the path a synthesis run takes). The bound is what a perfect client would need: the
server's summed latencies (read from ``/stats``) divided by the requests it serves at once. The ratio
wall / bound is the cost of the client, the cache and the event loop; the target is ratio <= 1.15.

For context, the same workload runs through plain aiohttp (no turnwise) in two shapes: workers that
each send one request after another (the floor for any client), and lock-step waves of ``concurrency``
requests, each wave waiting for its slowest (the shape of a naive ``gather`` per batch).

Modes: ``--mode workers`` (default: ``concurrency`` tasks, each calling ``chat`` on one conversation at
a time, as the simulate stage does, so every call pays its own cache lookup and write) or ``--mode
batch`` (one ``chat`` call with every conversation; the backend's semaphore bounds what is in flight).

The last line is key=value pairs for scripts::

    ratio=1.03 wall_s=3.25 bound_s=3.16 calls=2000 client_cpu_ms_per_call=0.41 ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from turnwise.models.base import Completion, GenerationSettings, ModelSpec
from turnwise.models.cache import CachedChatModel, ResponseCache
from turnwise.models.openai_http import OpenAIChatModel
from turnwise.testing.scripted_runner import spawn_server
from turnwise.testing.scripted_server import ServerConfig

SETTINGS = GenerationSettings(temperature=0.7, max_tokens=64)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Client overhead of the openai backend against a scripted server.")
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--latency-ms", type=float, default=100.0)
    p.add_argument("--jitter-ms", type=float, default=80.0)
    p.add_argument("--capacity", type=int, default=64, help="requests the server serves at once")
    p.add_argument("--mode", choices=("workers", "batch"), default="workers")
    p.add_argument("--no-baseline", action="store_true", help="skip the plain-aiohttp runs")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def conversations(tag: str, calls: int) -> list[list[dict[str, str]]]:
    """Distinct conversations (a system message and a user turn), so that nothing hits the cache."""
    system = {"role": "system", "content": "You are a helpful assistant. Answer briefly."}
    return [[system, {"role": "user", "content": f"[{tag}] Question {i}: what follows {i * 7919 % 10007}?"}]
            for i in range(calls)]


def server_call(root: str, path: str, method: str = "GET") -> dict:
    req = urllib.request.Request(root + path, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


async def run_turnwise(base_url: str, convs: list, args: argparse.Namespace, cache_dir: str) -> list[Completion]:
    spec = ModelSpec(model="scripted", backend="openai", base_urls=[base_url], concurrency=args.concurrency,
                     timeout_s=60, max_retries=2, backoff_s=0.1)
    cache = ResponseCache(Path(cache_dir) / "responses.sqlite")
    model = CachedChatModel(OpenAIChatModel(spec), cache)
    try:
        if args.mode == "batch":
            return await model.chat(convs, SETTINGS)
        return await _workers(args.concurrency, len(convs), lambda i: _one(model, convs[i]))
    finally:
        await model.aclose()
        cache.close()


async def _one(model: CachedChatModel, conv: list) -> Completion:
    return (await model.chat([conv], SETTINGS))[0]


async def _workers(concurrency: int, total: int, call: Callable[[int], Awaitable]) -> list:
    """``concurrency`` tasks, each taking the next index and awaiting ``call(index)``."""
    results: list = [None] * total
    next_index = iter(range(total))

    async def worker() -> None:
        for i in next_index:
            results[i] = await call(i)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


async def run_plain(base_url: str, convs: list, concurrency: int, waves: bool) -> list[int]:
    """Plain aiohttp, no turnwise: workers (the floor) or lock-step waves of ``concurrency``."""
    url = base_url + "/chat/completions"
    base = {"model": "scripted", **SETTINGS.to_dict()}
    base.pop("stop")
    base.pop("seed")
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers={"Content-Type": "application/json"}) as s:

        async def post(i: int) -> int:
            async with s.post(url, data=json.dumps({**base, "messages": convs[i]}).encode()) as resp:
                json.loads(await resp.read())
                return resp.status

        if not waves:
            return await _workers(concurrency, len(convs), post)
        statuses: list[int] = []
        for start in range(0, len(convs), concurrency):
            stop = min(start + concurrency, len(convs))
            statuses += await asyncio.gather(*(post(i) for i in range(start, stop)))
        return statuses


def measure(root: str, slots: int, run: Callable[[], list]) -> dict:
    """Run one phase against a freshly reset server; wall time, client CPU, the bound and the ratio."""
    server_call(root, "/stats/reset", "POST")
    cpu0, t0 = time.process_time(), time.perf_counter()
    results = run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    stats = server_call(root, "/stats")
    bound = stats["latency_sum_s"] / slots
    failed = sum(1 for r in results if (r != 200 if isinstance(r, int) else not r.ok))
    return {"calls": len(results), "failed": failed, "wall_s": wall, "bound_s": bound, "ratio": wall / bound,
            "cpu_ms_per_call": 1000 * cpu / len(results), "max_in_service": stats["max_in_service"]}


def main() -> None:
    args = parse_args()
    config = ServerConfig(latency_ms=args.latency_ms, jitter_ms=args.jitter_ms, capacity=args.capacity,
                          seed=args.seed)
    slots = min(args.capacity, args.concurrency)
    rows: dict[str, dict] = {}
    with spawn_server(config) as base_url, tempfile.TemporaryDirectory() as cache_dir:
        root = base_url.removesuffix("/v1")
        convs = conversations("turnwise", args.calls)
        rows[f"turnwise ({args.mode})"] = measure(
            root, slots, lambda: asyncio.run(run_turnwise(base_url, convs, args, cache_dir)))
        if not args.no_baseline:
            for name, waves in (("plain aiohttp workers", False), ("plain aiohttp waves", True)):
                convs = conversations(name, args.calls)
                rows[name] = measure(
                    root, slots, lambda c=convs, w=waves: asyncio.run(run_plain(base_url, c, args.concurrency, w)))
    print(f"{args.calls} calls at concurrency {args.concurrency}; server {args.latency_ms:g} ± {args.jitter_ms:g} ms, "
          f"{args.capacity} in service")
    print(f"{'client':<26}{'wall s':>8}{'bound s':>9}{'ratio':>7}{'cpu ms/call':>13}{'failed':>8}")
    for name, r in rows.items():
        print(f"{name:<26}{r['wall_s']:>8.2f}{r['bound_s']:>9.2f}{r['ratio']:>7.3f}"
              f"{r['cpu_ms_per_call']:>13.3f}{r['failed']:>8}")
    tw = next(iter(rows.values()))
    tail = (f"ratio={tw['ratio']:.3f} wall_s={tw['wall_s']:.3f} bound_s={tw['bound_s']:.3f} calls={tw['calls']} "
            f"client_cpu_ms_per_call={tw['cpu_ms_per_call']:.3f} failed={tw['failed']} mode={args.mode}")
    if "plain aiohttp workers" in rows:
        plain, waves = rows["plain aiohttp workers"], rows["plain aiohttp waves"]
        tail += (f" baseline_ratio={plain['ratio']:.3f} baseline_cpu_ms_per_call={plain['cpu_ms_per_call']:.3f}"
                 f" lockstep_ratio={waves['ratio']:.3f}")
    print(tail)


if __name__ == "__main__":
    main()
