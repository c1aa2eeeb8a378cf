"""Pieces every stage shares: a bounded async map over a stream, and cost accounting."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Container, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Protocol, TypeVar

from turnwise.errors import ConfigError
from turnwise.models.base import Completion

T = TypeVar("T")


class _HasId(Protocol):
    id: str


ItemT = TypeVar("ItemT", bound=_HasId)


def unfinished(items: Iterable[ItemT], done: Container[str], what: str = "conversation") -> Iterator[ItemT]:
    """The items whose ``id`` is not in ``done`` (a store's finished ids), lazily.

    Ids key the resumable records, so a repeated id in the input is refused rather than silently merged.
    """
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise ConfigError(f"duplicate {what} id {item.id!r} in the input: ids must be unique")
        seen.add(item.id)
        if item.id not in done:
            yield item


async def run_bounded(items: Iterable[T], worker: Callable[[T], Awaitable[None]], limit: int) -> None:
    """Run ``worker`` over a stream with at most ``limit`` items in flight.

    The stream is consumed lazily, so a million input records never sit in memory as tasks; each
    item finishes on its own schedule (fast items never wait for slow ones). A worker exception
    cancels the rest and propagates: workers report expected failures as records, not exceptions.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    pending: set[asyncio.Task[None]] = set()
    try:
        for item in items:
            if len(pending) >= limit:
                pending = await _reap(pending)
            pending.add(asyncio.create_task(worker(item)))
        while pending:
            pending = await _reap(pending)
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def _reap(pending: set[asyncio.Task[None]]) -> set[asyncio.Task[None]]:
    done, still = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        task.result()  # re-raise a worker's bug here rather than lose it
    return still


@dataclass
class Cost:
    """What a piece of work paid for.

    Attributes:
        calls: model calls (one per conversation sent, cached or not).
        cached: calls answered from the response cache.
        failed: calls that ended in an error.
        attempts: requests actually sent (retries included; zero for cached calls).
        prompt_tokens: prompt tokens paid for.
        completion_tokens: completion tokens paid for.
    """

    calls: int = 0
    cached: int = 0
    failed: int = 0
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, completion: Completion) -> None:
        self.calls += 1
        self.cached += completion.cached
        self.failed += not completion.ok
        self.attempts += completion.attempts
        self.prompt_tokens += completion.usage.prompt_tokens
        self.completion_tokens += completion.usage.completion_tokens

    def __iadd__(self, other: Cost) -> Cost:
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)
        return self

    def to_dict(self) -> dict[str, int]:
        return asdict(self)
