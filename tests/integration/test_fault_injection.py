"""1,000 requests through the openai backend against a server where 20% of attempts fail.

Every kind of fault is in the mix (429 with retry-after, 500, slow past the timeout, malformed JSON,
dropped connection). Whatever happens, nothing may be lost or mixed up: 1,000 results in order, each
answering its own request or naming why it failed, and no request body answered twice by the server
unless the client had given up on an answered attempt: an attempt that times out on the client may still
have been answered (a stalled machine can hold a 5 ms answer past the 0.5 s timeout), which no client can
rule out; every such duplicate must be matched by a timeout that no slow fault explains.
"""

from __future__ import annotations

import time

import pytest

from turnwise.models.base import GenerationSettings, ModelSpec
from turnwise.models.openai_http import OpenAIChatModel
from turnwise.testing.scripted_runner import serve_in_thread
from turnwise.testing.scripted_server import ServerConfig

pytestmark = pytest.mark.integration

CALLS = 1000


async def test_thousand_requests_at_twenty_percent_faults():
    config = ServerConfig(latency_ms=5, jitter_ms=4, capacity=64, fault_rate=0.2, retry_after_s=0.05,
                          slow_s=5.0, seed=7)
    conversations = [[{"role": "user", "content": f"request {i}"}] for i in range(CALLS)]
    with serve_in_thread(config) as server:
        spec = ModelSpec(model="m", backend="openai", base_urls=[server.base_url], concurrency=64,
                         timeout_s=0.5, max_retries=4, backoff_s=0.02, options={"max_backoff_s": 0.2})
        model = OpenAIChatModel(spec)
        start = time.perf_counter()
        try:
            out = await model.chat(conversations, GenerationSettings(max_tokens=16))
        finally:
            await model.aclose()
        wall = time.perf_counter() - start
        stats = server.stats()

    assert len(out) == CALLS
    ok = [c for c in out if c.ok]
    for i, completion in enumerate(out):
        if completion.ok:
            assert completion.text == f"reply to: request {i}"  # its own answer, in its own place
        else:
            assert completion.error and completion.error.endswith(f"after {completion.attempts} attempts")
            assert completion.attempts == spec.max_retries + 1
    assert len(ok) >= CALLS - 5  # a request fails only if 5 attempts in a row fail: p = 0.2**5
    extra_answers = stats["served"] - stats["bodies_served"]  # answers beyond the first, over all bodies
    failed_on_timeout = sum(1 for c in out if not c.ok and "timeout" in c.error)
    timeouts = model.retries_by_reason["timeout"] + failed_on_timeout
    assert extra_answers <= max(0, timeouts - stats["faults"]["slow"])
    assert len(ok) <= stats["bodies_served"] <= len(ok) + failed_on_timeout
    assert set(stats["faults"]) == {"429", "500", "slow", "malformed", "drop"}
    assert sum(model.retries_by_reason.values()) == model.http_calls - CALLS
    assert model.http_calls == stats["requests"]
    assert wall < 30
