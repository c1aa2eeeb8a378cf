"""The openai backend against the scripted server in a background thread (a few ms per request)."""

from __future__ import annotations

import asyncio
import email.utils
import time
from typing import Any

import pytest

from turnwise.errors import ConfigError
from turnwise.models.base import GenerationSettings, ModelSpec, load_model
from turnwise.models.cache import CachedChatModel, ResponseCache
from turnwise.models.openai_http import OpenAIChatModel, _retry_after
from turnwise.testing.scripted_runner import serve_in_thread
from turnwise.testing.scripted_server import ServerConfig

FAST = {"latency_ms": 3.0, "jitter_ms": 2.0}
SETTINGS = GenerationSettings(temperature=0.0, max_tokens=32)


def make_model(*urls: str, **overrides: Any) -> OpenAIChatModel:
    fields: dict[str, Any] = {"concurrency": 4, "timeout_s": 5.0, "max_retries": 3, "backoff_s": 0.01}
    fields.update(overrides)
    return OpenAIChatModel(ModelSpec(model="m", backend="openai", base_urls=list(urls), **fields))


def convs(k: int, tag: str = "q") -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": f"{tag} {i}"}] for i in range(k)]


async def ask(model: OpenAIChatModel, k: int = 1, settings: GenerationSettings = SETTINGS, tag: str = "q"):
    try:
        return await model.chat(convs(k, tag), settings)
    finally:
        await model.aclose()


async def test_replies_in_order_with_usage():
    with serve_in_thread(**FAST) as server:
        model = make_model(server.base_url)
        out = await ask(model, 5)
    assert [c.text for c in out] == [f"reply to: q {i}" for i in range(5)]
    assert all(c.ok and c.attempts == 1 and not c.cached for c in out)
    assert out[0].finish_reasons == ["stop"]
    assert (out[0].usage.prompt_tokens, out[0].usage.completion_tokens) == (2, 4)
    assert model.http_calls == 5 and not model.retries_by_reason


async def test_load_model_builds_the_backend():
    model = load_model(ModelSpec(model="m", base_urls=["http://127.0.0.1:1/v1/"]))
    assert isinstance(model, OpenAIChatModel) and model.backend == "openai" and model.model == "m"
    assert model.base_urls == ["http://127.0.0.1:1/v1"]
    assert await model.chat([], SETTINGS) == []


async def test_retry_after_is_honoured():
    with serve_in_thread(fault_kinds=("429",), fail_first=1, retry_after_s=0.3, **FAST) as server:
        model = make_model(server.base_url, backoff_s=0.0)
        start = time.perf_counter()
        (out,) = await ask(model)
        waited = time.perf_counter() - start
    assert out.ok and out.attempts == 2
    assert waited >= 0.3
    assert model.retries_by_reason == {"http 429": 1}


async def test_max_backoff_caps_retry_after():
    with serve_in_thread(fault_kinds=("429",), fail_first=1, retry_after_s=30, **FAST) as server:
        model = make_model(server.base_url, options={"max_backoff_s": 0.05})
        start = time.perf_counter()
        (out,) = await ask(model)
    assert out.ok and time.perf_counter() - start < 5


async def test_server_error_then_success():
    with serve_in_thread(fault_kinds=("500",), fail_first=2, **FAST) as server:
        model = make_model(server.base_url)
        (out,) = await ask(model)
        assert server.stats()["status_counts"] == {"500": 2, "200": 1}
    assert out.ok and out.attempts == 3 and out.text == "reply to: q 0"
    assert model.retries_by_reason == {"http 500": 2} and model.http_calls == 3


async def test_timeout_then_success():
    with serve_in_thread(fault_kinds=("slow",), fail_first=1, slow_s=10, **FAST) as server:
        model = make_model(server.base_url, timeout_s=0.3)
        start = time.perf_counter()
        (out,) = await ask(model)
    assert out.ok and out.attempts == 2
    assert model.retries_by_reason == {"timeout": 1}
    assert time.perf_counter() - start < 5


async def test_malformed_reply_is_retried_then_reported():
    with serve_in_thread(fault_kinds=("malformed",), fail_first=1, **FAST) as server:
        model = make_model(server.base_url)
        (out,) = await ask(model)
    assert out.ok and out.attempts == 2 and model.retries_by_reason == {"malformed reply": 1}

    with serve_in_thread(fault_kinds=("malformed",), fault_rate=1.0, **FAST) as server:
        model = make_model(server.base_url, max_retries=2)
        (out,) = await ask(model)
    assert not out.ok and out.texts == []
    assert out.error == "malformed reply after 3 attempts" and out.attempts == 3
    assert model.failures_by_reason == {"malformed reply": 1}


async def test_dropped_connection_is_retried():
    with serve_in_thread(fault_kinds=("drop",), fail_first=1, **FAST) as server:
        model = make_model(server.base_url)
        (out,) = await ask(model)
    assert out.ok and out.attempts == 2
    (reason,) = model.retries_by_reason
    assert reason.startswith("connection error")


async def test_connection_refused_exhausts_retries():
    with serve_in_thread(**FAST) as server:
        url = server.base_url  # the port is free again once the server stops
    model = make_model(url, max_retries=1)
    (out,) = await ask(model)
    assert out.error is not None and out.error.startswith("connection error") and out.attempts == 2


async def test_client_error_fails_at_once(monkeypatch):
    monkeypatch.setenv("TW_TEST_KEY", "sk-very-secret-123")
    with serve_in_thread(fault_kinds=("400",), fault_rate=1.0, **FAST) as server:
        model = make_model(server.base_url, api_key_env="TW_TEST_KEY")
        (out,) = await ask(model)
        assert server.stats()["requests"] == 1
    assert out.error is not None and out.error.startswith("http 400") and out.error.endswith("after 1 attempt")
    assert out.attempts == 1 and model.http_calls == 1 and not model.retries_by_reason
    assert "sk-very-secret-123" not in out.error  # the server echoed the header; the client redacts it


async def test_api_key_sent_and_never_shown(monkeypatch):
    monkeypatch.setenv("TW_TEST_KEY", "sk-very-secret-123")
    with serve_in_thread(fault_kinds=("500",), fault_rate=1.0, **FAST) as server:
        model = make_model(server.base_url, api_key_env="TW_TEST_KEY", max_retries=1)
        (out,) = await ask(model)
        assert dict(server.server.stats.authorization) == {"Bearer sk-very-secret-123": 2}
    shown = [repr(model), str(model.cache_identity), out.error, str(model.retries_by_reason)]
    assert not any("sk-very-secret-123" in text for text in shown)
    assert model.cache_identity == {"backend": "openai", "model": "m"}


def test_missing_key_variable_is_a_config_error(monkeypatch):
    monkeypatch.delenv("TW_MISSING_KEY", raising=False)
    with pytest.raises(ConfigError, match="TW_MISSING_KEY"):
        make_model("http://127.0.0.1:1/v1", api_key_env="TW_MISSING_KEY")
    with pytest.raises(ConfigError, match="base URL"):
        make_model()


async def test_several_base_urls_share_the_load():
    with serve_in_thread(**FAST) as a, serve_in_thread(**FAST) as b:
        model = make_model(a.base_url, b.base_url, concurrency=2)
        out = await ask(model, 40)
        stats_a, stats_b = a.stats(), b.stats()
    assert all(c.ok for c in out)
    assert stats_a["served"] > 5 and stats_b["served"] > 5
    assert stats_a["served"] + stats_b["served"] == 40
    assert stats_a["max_in_service"] <= 2 and stats_b["max_in_service"] <= 2  # per-URL concurrency


async def test_retry_moves_to_another_url():
    with serve_in_thread(fault_kinds=("500",), fault_rate=1.0, **FAST) as bad, serve_in_thread(**FAST) as good:
        model = make_model(bad.base_url, good.base_url, concurrency=20, max_retries=1)
        out = await ask(model, 20)
        failed_on_bad = bad.stats()["requests"]
    assert all(c.ok for c in out)  # every failure on the bad URL was retried on the good one
    assert failed_on_bad > 0 and model.retries_by_reason == {"http 500": failed_on_bad}


async def test_failing_url_is_benched():
    with serve_in_thread(fault_kinds=("500",), fault_rate=1.0, **FAST) as bad, serve_in_thread(**FAST) as good:
        model = make_model(bad.base_url, good.base_url, concurrency=2, options={"url_strikes": 2})
        out = await ask(model, 30)
        assert bad.stats()["requests"] <= 4 and good.stats()["served"] == 30
    assert all(c.ok for c in out)


async def test_n_samples_ordered_by_index():
    with serve_in_thread(reverse_choices=True, **FAST) as server:
        model = make_model(server.base_url)
        (out,) = await ask(model, settings=GenerationSettings(n=3))
    assert out.texts == [f"reply to: q 0 (sample {i})" for i in range(3)]
    assert out.finish_reasons == ["stop"] * 3


async def test_settings_are_passed_through():
    seen: list[dict[str, Any]] = []

    def script(request: dict[str, Any]) -> str:
        seen.append(request)
        return "one two END three"

    with serve_in_thread(ServerConfig(script=script, **FAST)) as server:
        model = make_model(server.base_url)
        settings = GenerationSettings(temperature=0.3, top_p=0.9, max_tokens=7, seed=11, stop=("END",))
        (out,) = await model.chat(convs(1), settings)
        await model.chat(convs(1, "plain"), SETTINGS)
        await model.aclose()
    assert out.text == "one two " and out.finish_reasons == ["stop"]
    first, second = seen
    assert {k: first[k] for k in ("model", "temperature", "top_p", "max_tokens", "n", "seed", "stop")} == {
        "model": "m", "temperature": 0.3, "top_p": 0.9, "max_tokens": 7, "n": 1, "seed": 11, "stop": ["END"]}
    assert first["messages"] == [{"role": "user", "content": "q 0"}]
    assert "seed" not in second and "stop" not in second


async def test_cached_rerun_makes_no_http_calls(tmp_path):
    with serve_in_thread(**FAST) as server:
        inner = make_model(server.base_url)
        cached = CachedChatModel(inner, ResponseCache(tmp_path / "cache.sqlite"))
        first = await cached.chat(convs(6), SETTINGS)
        calls, served = inner.http_calls, server.stats()["served"]
        again = await cached.chat(convs(6), SETTINGS)
        assert server.stats()["served"] == served == 6
        await cached.aclose()
    assert inner.http_calls == calls == 6
    assert all(c.cached and c.attempts == 0 for c in again)
    assert [c.text for c in again] == [c.text for c in first]


def test_session_follows_the_event_loop():
    with serve_in_thread(**FAST) as server:
        model = make_model(server.base_url)
        first = asyncio.run(ask(model, 2))  # closed in its loop
        second = asyncio.run(ask(model, 2))  # a new loop: a new session
    assert all(c.ok for c in first + second) and model.http_calls == 4


# The first loop ends without aclose(): its pooled sockets can only be reclaimed by the garbage collector.
@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
def test_session_left_open_in_a_dead_loop_is_replaced():
    with serve_in_thread(**FAST) as server:
        model = make_model(server.base_url)
        first = asyncio.run(model.chat(convs(2), SETTINGS))
        second = asyncio.run(ask(model, 2))  # no "attached to a different loop" error
    assert all(c.ok for c in first + second) and model.http_calls == 4


def test_retry_after_parsing():
    assert _retry_after("2") == 2.0
    assert _retry_after("0.25") == 0.25
    assert _retry_after(None) is None and _retry_after("soon") is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (_retry_after(future) or 0) <= 31
    assert _retry_after(email.utils.formatdate(0, usegmt=True)) == 0.0
