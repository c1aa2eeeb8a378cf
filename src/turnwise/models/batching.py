"""Merge concurrent single-conversation requests into batches for in-process backends (local, vllm).

Simulation runs each dialogue as its own async loop, so an in-process model sees many callers that each
send one conversation. Requests queue up while the worker thread is busy with the previous batch; the
next batch takes the queued rows that share the oldest request's settings. Generation runs in one
worker thread, so the event loop stays free and the model is never used by two threads at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from turnwise.data.schema import Message
from turnwise.errors import ConfigError
from turnwise.models.base import Completion, GenerationSettings

logger = logging.getLogger(__name__)

BatchRunner = Callable[[list[list[Message]], GenerationSettings], list[Completion]]


@dataclass
class _Request:
    messages: list[Message]
    settings: GenerationSettings
    future: asyncio.Future[Completion]


class MicroBatcher:
    """Merge concurrent requests into batches and run them one at a time in a worker thread.

    Args:
        run_batch: generates for a list of conversations sharing settings; runs in the worker thread
            and returns one Completion per conversation.
        max_rows: most sequences per batch; a batch holds ``max(1, max_rows // settings.n)`` conversations.
        wait_s: how long to wait for more requests before running a batch that is not full.
        name: the worker thread's name.
    """

    def __init__(self, run_batch: BatchRunner, *, max_rows: int, wait_s: float = 0.0, name: str = "turnwise"):
        if max_rows < 1:
            raise ConfigError(f"batch size (concurrency) must be at least 1, got {max_rows}")
        self._run_batch = run_batch
        self._max_rows = max_rows
        self._wait_s = wait_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._pending: deque[_Request] = deque()
        self._drainer: asyncio.Task[None] | None = None
        self._closed = False
        self.batches_run = 0

    async def submit(self, conversations: Sequence[list[Message]], settings: GenerationSettings) -> list[Completion]:
        """Queue conversations and wait for their completions, in order."""
        if self._closed:
            return [Completion(error="model is closed") for _ in conversations]
        loop = asyncio.get_running_loop()
        futures = []
        for messages in conversations:
            future: asyncio.Future[Completion] = loop.create_future()
            self._pending.append(_Request(list(messages), settings, future))
            futures.append(future)
        if self._drainer is None or self._drainer.done() or self._drainer.get_loop() is not loop:
            # Requests left by a loop that is gone would never be answered on this one.
            self._pending = deque(r for r in self._pending if r.future.get_loop() is loop)
            self._drainer = loop.create_task(self._drain())
        return list(await asyncio.gather(*futures))

    def _take_batch(self) -> list[_Request]:
        while self._pending and self._pending[0].future.done():  # callers that were cancelled
            self._pending.popleft()
        if not self._pending:
            return []
        settings = self._pending[0].settings
        limit = max(1, self._max_rows // settings.n)
        batch: list[_Request] = []
        rest: deque[_Request] = deque()
        while self._pending:
            request = self._pending.popleft()
            if request.future.done():
                continue
            (batch if len(batch) < limit and request.settings == settings else rest).append(request)
        self._pending = rest
        return batch

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            # Yield first: callers woken by the previous batch send their next turn before this one forms.
            await asyncio.sleep(0)
            if self._wait_s and len(self._pending) < self._max_rows:
                await asyncio.sleep(self._wait_s)
            batch = self._take_batch()
            if not batch:
                continue
            conversations = [request.messages for request in batch]
            try:
                results = await loop.run_in_executor(self._executor, self._run_batch, conversations, batch[0].settings)
            except Exception as exc:  # a runner should not raise; if it does, its rows fail, not the callers
                logger.exception("batch of %d failed", len(batch))
                results = [Completion(error=f"{type(exc).__name__}: {exc}") for _ in batch]
            self.batches_run += 1
            for request, result in zip(batch, results, strict=True):
                if not request.future.done():
                    request.future.set_result(result)

    async def aclose(self) -> None:
        """Fail what is still queued, let the running batch finish, and stop the worker thread."""
        self._closed = True
        for request in self._pending:
            if not request.future.done():
                request.future.set_result(Completion(error="model was closed before this request ran"))
        self._pending.clear()
        if self._drainer is not None and not self._drainer.done():
            await self._drainer
        await asyncio.to_thread(self._executor.shutdown, wait=True)
