"""The `openai` backend against a real OpenAI-compatible server: `transformers serve` on a tiny model.

200 requests complete; a second identical run answers all of them from the cache with zero HTTP calls.
"""

from __future__ import annotations

import pytest

from turnwise.models.base import GenerationSettings, ModelSpec, load_model
from turnwise.models.cache import CachedChatModel, ResponseCache
from turnwise.testing.transformers_server import serve_model

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served(tiny_model_dir, tmp_path_factory):
    with serve_model(tiny_model_dir, log_path=tmp_path_factory.mktemp("log") / "serve.log") as url:
        yield str(tiny_model_dir), url


async def test_200_requests_then_a_cached_rerun_makes_no_http_call(served, tmp_path):
    model_dir, url = served
    conversations = [[{"role": "user", "content": f"tell me about item {i}"}] for i in range(200)]
    settings = GenerationSettings(temperature=0, max_tokens=4)
    cache_path = tmp_path / "cache.sqlite"

    async def run() -> tuple[list, int]:
        backend = load_model(ModelSpec(model_dir, backend="openai", base_urls=[url], concurrency=8, timeout_s=60))
        model = CachedChatModel(backend, ResponseCache(cache_path))
        out = await model.chat(conversations, settings)
        await model.aclose()
        return out, backend.http_calls

    first, calls = await run()
    assert [c.error for c in first if not c.ok] == []
    assert all(len(c.texts) == 1 and c.finish_reasons[0] in ("stop", "length") for c in first)
    assert calls >= 200 and sum(c.usage.completion_tokens for c in first) > 0

    second, calls_again = await run()
    assert calls_again == 0
    assert [c.texts for c in second] == [c.texts for c in first] and all(c.cached for c in second)
