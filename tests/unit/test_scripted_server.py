"""The scripted OpenAI-compatible server: replies, latency, capacity, faults, stats, both ways to run it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

import aiohttp
import pytest

from turnwise.testing.scripted_runner import serve_in_thread, server_args, spawn_server
from turnwise.testing.scripted_server import (
    ScriptedServer,
    ServerConfig,
    build_parser,
    config_from_args,
    default_reply,
    main,
)

FAST = {"latency_ms": 3.0, "jitter_ms": 2.0}


def request(content: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": content}], **extra}


async def post(url: str, payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as s, s.post(url + "/chat/completions", json=payload) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def get_json(url: str, method: str = "GET") -> Any:
    async with aiohttp.ClientSession() as s, s.request(method, url) as resp:
        return await resp.json()


def digest(payload: dict[str, Any]) -> bytes:
    return hashlib.blake2b(json.dumps(payload).encode(), digest_size=16).digest()


def test_default_reply_is_shortened():
    assert default_reply(request("what   is\nthis")) == "reply to: what is this"
    long = default_reply(request("x" * 100))
    assert long == "reply to: " + "x" * 57 + "..."
    system_last = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    assert default_reply(system_last) == "reply to: a"


async def test_reply_n_usage_and_endpoints():
    with serve_in_thread(**FAST) as server:
        status, _, body = await post(server.base_url, request("one two three", n=2))
        models = await get_json(server.base_url + "/models")
        root = server.base_url.removesuffix("/v1")
        stats = await get_json(root + "/stats")
        await get_json(root + "/stats/reset", "POST")
        after = await get_json(root + "/stats")
    reply = json.loads(body)
    assert status == 200
    assert [c["message"]["content"] for c in reply["choices"]] == [
        "reply to: one two three (sample 0)", "reply to: one two three (sample 1)"]
    assert reply["usage"] == {"prompt_tokens": 3, "completion_tokens": 14, "total_tokens": 17}
    assert models["data"][0]["id"] == "scripted"
    assert stats["served"] == 1 and stats["status_counts"] == {"200": 1} and stats["latency_sum_s"] > 0
    assert after["served"] == 0 and after["distinct_bodies"] == 0


async def test_script_stop_and_max_tokens():
    def script(req: dict[str, Any]) -> list[str]:
        return ["a b c STOP d", "one two three four five"]

    with serve_in_thread(ServerConfig(script=script, **FAST)) as server:
        _, _, body = await post(server.base_url, request(n=3, stop="STOP", max_tokens=4))
    choices = json.loads(body)["choices"]
    assert [(c["message"]["content"], c["finish_reason"]) for c in choices] == [
        ("a b c ", "stop"), ("one two three four", "length"), ("a b c ", "stop")]


async def test_bad_request_body_is_400():
    with serve_in_thread(**FAST) as server:
        async with aiohttp.ClientSession() as s, s.post(server.base_url + "/chat/completions", data=b"{") as r:
            assert r.status == 400


def test_latency_is_deterministic_and_in_range():
    a, b = ScriptedServer(ServerConfig(seed=1)), ScriptedServer(ServerConfig(seed=1))
    other = ScriptedServer(ServerConfig(seed=2))
    digests = [digest(request(f"q {i}")) for i in range(500)]
    lat = [a.latency_s(d) for d in digests]
    assert lat == [b.latency_s(d) for d in digests]
    assert lat != [other.latency_s(d) for d in digests]
    assert 0.020 <= min(lat) < 0.030 and 0.170 < max(lat) <= 0.180  # uniform in 100 ± 80 ms
    assert abs(sum(lat) / len(lat) - 0.100) < 0.006


def test_faults_are_deterministic_and_at_the_rate():
    config = ServerConfig(fault_rate=0.2, seed=3)
    a, b = ScriptedServer(config), ScriptedServer(config)
    digests = [digest(request(f"q {i}")) for i in range(5000)]
    first = [a.fault(d, 1) for d in digests]
    assert first == [b.fault(d, 1) for d in digests]
    failed = [f for f in first if f is not None]
    assert 0.17 < len(failed) / len(digests) < 0.23
    assert set(failed) == {"429", "500", "slow", "malformed", "drop"}
    assert first != [a.fault(d, 2) for d in digests]  # a retry draws again
    always = ScriptedServer(ServerConfig(fault_kinds=("500",), fail_first=2))
    assert [always.fault(digests[0], seen) for seen in (1, 2, 3)] == ["500", "500", None]


def test_unknown_fault_kind_rejected():
    with pytest.raises(ValueError, match="unknown fault kinds"):
        ServerConfig(fault_kinds=("teapot",))


async def test_capacity_bounds_requests_in_service():
    with serve_in_thread(latency_ms=50, jitter_ms=0, capacity=2) as server:
        start = time.perf_counter()
        results = await asyncio.gather(*(post(server.base_url, request(f"q {i}")) for i in range(6)))
        wall = time.perf_counter() - start
        stats = server.stats()
    assert all(status == 200 for status, _, _ in results)
    assert stats["max_in_service"] == 2 and stats["in_service"] == 0
    assert wall >= 0.15  # 6 requests of 50 ms, 2 at a time
    assert stats["latency_sum_s"] == pytest.approx(0.3)


async def test_fault_kinds_on_the_wire():
    with serve_in_thread(fault_kinds=("429",), fail_first=1, retry_after_s=0.25, **FAST) as server:
        status, headers, _ = await post(server.base_url, request())
        assert (status, headers["Retry-After"]) == (429, "0.25")
        status, _, _ = await post(server.base_url, request())  # the same body, seen twice: served
        assert status == 200
    with serve_in_thread(fault_kinds=("malformed",), fail_first=1, **FAST) as server:
        status, _, body = await post(server.base_url, request())
        assert status == 200 and body.endswith(b'"mess')
        assert server.stats()["served"] == 0
    with serve_in_thread(fault_kinds=("drop",), fail_first=1, **FAST) as server:
        with pytest.raises(aiohttp.ClientConnectionError):
            await post(server.base_url, request())
        assert server.stats()["status_counts"] == {"dropped": 1}


async def test_slow_request_abandoned_by_client_frees_its_slot():
    with serve_in_thread(fault_kinds=("slow",), fail_first=1, slow_s=30, capacity=1, **FAST) as server:
        timeout = aiohttp.ClientTimeout(total=0.2)
        async with aiohttp.ClientSession(timeout=timeout) as s:
            with pytest.raises(asyncio.TimeoutError):
                await s.post(server.base_url + "/chat/completions", json=request())
        await asyncio.sleep(0.1)
        assert server.stats()["in_service"] == 0
        status, _, _ = await post(server.base_url, request())
        assert status == 200


async def test_successes_per_body_counted():
    with serve_in_thread(**FAST) as server:
        for _ in range(2):
            await post(server.base_url, request("same"))
        await post(server.base_url, request("other"))
        stats = server.stats()
        per_body = server.successes_per_body()
    assert stats["max_successes_per_body"] == 2 and stats["duplicate_successes"] == 1
    assert sorted(per_body.values()) == [1, 2]


def test_cli_arguments_round_trip():
    config = ServerConfig(latency_ms=7, jitter_ms=1, capacity=9, fault_rate=0.1, fault_kinds=("500",),
                          fail_first=1, retry_after_s=0.2, slow_s=3, seed=5)
    assert config_from_args(build_parser().parse_args(server_args(config))) == config
    with pytest.raises(ValueError, match="in-process"):
        server_args(ServerConfig(script=lambda r: "x"))
    with pytest.raises(SystemExit, match="loopback"):
        main(["--host", "0.0.0.0"])


async def test_spawned_process_serves():
    with spawn_server(ServerConfig(**FAST, seed=4)) as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        status, _, body = await post(url, request("from a process"))
        stats = await get_json(url.removesuffix("/v1") + "/stats")
    assert status == 200 and json.loads(body)["choices"][0]["message"]["content"] == "reply to: from a process"
    assert stats["served"] == 1


async def test_config_endpoint_changes_latency_mid_run():
    with serve_in_thread(ServerConfig(latency_ms=0, jitter_ms=0)) as server:
        root = server.base_url.removesuffix("/v1")
        started = time.monotonic()
        assert (await post(server.base_url, request("a")))[0] == 200
        fast = time.monotonic() - started
        async with aiohttp.ClientSession() as s:
            async with s.post(root + "/config", json={"latency_ms": 300}) as resp:
                assert resp.status == 200 and (await resp.json())["latency_ms"] == 300
            for bad in ({"capacity": 1}, {"latency_ms": -1}, {"fault_rate": 2}, ["latency_ms"]):
                async with s.post(root + "/config", json=bad) as resp:
                    assert resp.status == 400
        started = time.monotonic()
        assert (await post(server.base_url, request("b")))[0] == 200
        assert time.monotonic() - started >= 0.3 > fast
        assert server.server.config.latency_ms == 300
