"""The response cache: hits, misses, sample indices, failures never cached, persistence across opens."""

from __future__ import annotations

import asyncio
import threading

from turnwise.models.base import GenerationSettings
from turnwise.models.cache import CachedChatModel, ResponseCache, cache_key
from turnwise.testing.fake import FakeChatModel

CONV = [{"role": "user", "content": "hello"}]
GREEDY = GenerationSettings(temperature=0.0, max_tokens=8)


async def test_second_call_is_answered_from_the_cache(tmp_path):
    fake = FakeChatModel()
    model = CachedChatModel(fake, ResponseCache(tmp_path / "c.sqlite"))
    [first] = await model.chat([CONV], GREEDY)
    [second] = await model.chat([CONV], GREEDY)
    assert len(fake.seen) == 1
    assert second.cached and not first.cached
    assert second.texts == first.texts == ["answer to: hello"]
    assert second.usage.prompt_tokens == 0 and second.attempts == 0
    assert (model.stats.hits, model.stats.misses) == (1, 1)


async def test_settings_and_messages_are_part_of_the_key(tmp_path):
    fake = FakeChatModel()
    model = CachedChatModel(fake, ResponseCache(tmp_path / "c.sqlite"))
    await model.chat([CONV], GREEDY)
    await model.chat([CONV], GenerationSettings(temperature=0.7, max_tokens=8))
    await model.chat([[{"role": "user", "content": "hello!"}]], GREEDY)
    assert len(fake.seen) == 3


async def test_only_misses_reach_the_model_and_order_is_kept(tmp_path):
    fake = FakeChatModel()
    model = CachedChatModel(fake, ResponseCache(tmp_path / "c.sqlite"))
    await model.chat([CONV], GREEDY)
    convs = [[{"role": "user", "content": f"q{i}"}] for i in range(3)]
    out = await model.chat([convs[0], CONV, convs[2]], GREEDY)
    assert [c.text for c in out] == ["answer to: q0", "answer to: hello", "answer to: q2"]
    assert fake.batches == [1, 2]


async def test_failures_are_not_cached(tmp_path):
    replies = iter([None, "fine"])
    fake = FakeChatModel(lambda _: next(replies))
    model = CachedChatModel(fake, ResponseCache(tmp_path / "c.sqlite"))
    [failed] = await model.chat([CONV], GREEDY)
    [ok] = await model.chat([CONV], GREEDY)
    assert not failed.ok and ok.text == "fine" and len(fake.seen) == 2


async def test_empty_texts_are_not_cached(tmp_path):
    replies = iter(["", "fine"])
    fake = FakeChatModel(lambda _: next(replies))
    model = CachedChatModel(fake, ResponseCache(tmp_path / "c.sqlite"))
    [empty] = await model.chat([CONV], GREEDY)
    [ok] = await model.chat([CONV], GREEDY)
    assert empty.ok and empty.text == "" and ok.text == "fine" and len(fake.seen) == 2


async def test_each_sample_has_its_own_entry(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    fake = FakeChatModel()
    model = CachedChatModel(fake, cache)
    settings = GenerationSettings(n=3, max_tokens=8)
    [first] = await model.chat([CONV], settings)
    [again] = await model.chat([CONV], settings)
    assert len(cache) == 3 and len(fake.seen) == 1
    assert again.texts == first.texts and len(again.texts) == 3
    keys = {cache_key({"backend": "fake", "model": "fake"}, settings, CONV, i) for i in range(3)}
    assert set(cache.get_many(sorted(keys))) == keys


async def test_cache_survives_reopening(tmp_path):
    path = tmp_path / "c.sqlite"
    await CachedChatModel(FakeChatModel(), ResponseCache(path)).chat([CONV], GREEDY)
    fake = FakeChatModel()
    [out] = await CachedChatModel(fake, ResponseCache(path)).chat([CONV], GREEDY)
    assert out.cached and fake.seen == []


def test_concurrent_writers_in_one_process(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")

    def write(worker: int) -> None:
        for i in range(50):
            cache.put_many([(f"{worker}-{i}", {"text": str(i), "finish_reason": "stop"})])

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 400


async def test_concurrent_tasks_share_one_cache(tmp_path):
    fake = FakeChatModel(delay_s=0.001)
    model = CachedChatModel(fake, ResponseCache(tmp_path / "c.sqlite"))
    convs = [[{"role": "user", "content": f"q{i}"}] for i in range(100)]
    await asyncio.gather(*(model.chat([c], GREEDY) for c in convs))
    out = await asyncio.gather(*(model.chat([c], GREEDY) for c in convs))
    assert all(c.cached for [c] in out) and len(fake.seen) == 100


def test_an_empty_cache_is_truthy(tmp_path):
    """`model if cache else ...` must not skip a fresh, empty cache (it has a __len__)."""
    cache = ResponseCache(tmp_path / "c.sqlite")
    assert len(cache) == 0 and bool(cache)


async def test_identical_requests_in_flight_are_sent_once(tmp_path):
    fake = FakeChatModel(delay_s=0.01)
    model = CachedChatModel(fake, ResponseCache(tmp_path / "c.sqlite"))
    other = [{"role": "user", "content": "other"}]
    outs = await asyncio.gather(model.chat([CONV], GREEDY), model.chat([CONV, other, CONV], GREEDY))
    assert len(fake.seen) == 2  # "hello" once, "other" once
    [first], [second, third, fourth] = outs
    assert first.text == second.text == fourth.text == "answer to: hello" and third.text == "answer to: other"
    assert not first.cached and second.cached and second.attempts == 0 and fourth.cached
    assert model._inflight == {}


async def test_a_shared_request_that_fails_is_a_failure_for_everyone(tmp_path):
    fake = FakeChatModel(lambda _: None, delay_s=0.01)
    model = CachedChatModel(fake, ResponseCache(tmp_path / "c.sqlite"))
    [a], [b] = await asyncio.gather(model.chat([CONV], GREEDY), model.chat([CONV], GREEDY))
    assert not a.ok and not b.ok and b.error == a.error and len(fake.seen) == 1
