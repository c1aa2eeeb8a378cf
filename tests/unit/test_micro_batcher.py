"""The micro-batcher behind the local and vllm backends, with a fake batch runner (no model)."""

from __future__ import annotations

import asyncio
import threading

from turnwise.models.base import Completion, GenerationSettings
from turnwise.models.batching import MicroBatcher

GREEDY = GenerationSettings(temperature=0, max_tokens=8)
SAMPLE = GenerationSettings(temperature=1.0, max_tokens=8)


class FakeRunner:
    """Answers each conversation with its last message; records every batch and its thread."""

    def __init__(self, fail: bool = False):
        self.batches: list[tuple[list[str], GenerationSettings]] = []
        self.threads: set[str] = set()
        self.fail = fail

    def __call__(self, conversations, settings):
        self.threads.add(threading.current_thread().name)
        self.batches.append(([c[-1]["content"] for c in conversations], settings))
        if self.fail:
            raise RuntimeError("out of memory")
        return [Completion(texts=[c[-1]["content"].upper()] * settings.n) for c in conversations]


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


async def test_concurrent_single_callers_share_batches():
    runner = FakeRunner()
    batcher = MicroBatcher(runner, max_rows=4)
    results = await asyncio.gather(*[batcher.submit([ask(f"q{i}")], GREEDY) for i in range(10)])
    assert [r[0].text for r in results] == [f"Q{i}" for i in range(10)]
    assert [len(texts) for texts, _ in runner.batches] == [4, 4, 2]
    assert batcher.batches_run == 3
    assert runner.threads and all(name.startswith("turnwise") for name in runner.threads)
    await batcher.aclose()


async def test_batches_share_settings_and_respect_n():
    runner = FakeRunner()
    batcher = MicroBatcher(runner, max_rows=4)
    two = GenerationSettings(temperature=1.0, n=2)
    calls = [
        batcher.submit([ask("a")], GREEDY),
        batcher.submit([ask("b")], SAMPLE),
        batcher.submit([ask("c")], GREEDY),
        batcher.submit([ask("d"), ask("e"), ask("f")], two),
    ]
    results = await asyncio.gather(*calls)
    assert results[3][2].texts == ["F", "F"]
    # Oldest first; a batch takes only rows with the oldest request's settings; n=2 halves the rows.
    assert runner.batches == [(["a", "c"], GREEDY), (["b"], SAMPLE), (["d", "e"], two), (["f"], two)]
    await batcher.aclose()


async def test_runner_failure_becomes_error_completions():
    batcher = MicroBatcher(FakeRunner(fail=True), max_rows=4)
    results = await batcher.submit([ask("a"), ask("b")], GREEDY)
    assert [r.error for r in results] == ["RuntimeError: out of memory"] * 2
    await batcher.aclose()


async def test_cancelled_caller_is_skipped():
    runner = FakeRunner()
    batcher = MicroBatcher(runner, max_rows=4)
    doomed = asyncio.ensure_future(batcher.submit([ask("gone")], GREEDY))
    await asyncio.sleep(0)  # queued, not yet run
    doomed.cancel()
    assert (await batcher.submit([ask("kept")], GREEDY))[0].text == "KEPT"
    assert runner.batches == [(["kept"], GREEDY)]
    await batcher.aclose()


async def test_closed_batcher_answers_with_errors():
    batcher = MicroBatcher(FakeRunner(), max_rows=2)
    await batcher.aclose()
    assert (await batcher.submit([ask("late")], GREEDY))[0].error == "model is closed"


def test_survives_a_new_event_loop():
    """pytest-asyncio, scripts and notebooks may each run their own loop against one model."""
    batcher = MicroBatcher(FakeRunner(), max_rows=2)
    assert asyncio.run(batcher.submit([ask("one")], GREEDY))[0].text == "ONE"
    assert asyncio.run(batcher.submit([ask("two")], GREEDY))[0].text == "TWO"
    asyncio.run(batcher.aclose())
