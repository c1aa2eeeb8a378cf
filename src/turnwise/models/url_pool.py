"""Which base URL a request goes to, and when it may go at all.

A fleet of OpenAI-compatible servers is a set of base URLs, each taking at most ``limit`` requests at
once. :class:`UrlPool` admits a request to the URL with the fewest in flight, and makes it wait (first
come, first served) while every usable URL is full. A URL that keeps failing (``strikes`` retryable
failures in a row: refused connections, timeouts, 5xx) is benched for a cooldown that doubles while it
keeps failing, so a dead server does not soak up every first attempt; when the cooldown ends it takes
requests again, and one success clears its record. Benched URLs are used only when all URLs are benched
(with one URL, benching never blocks anything).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable


class UrlPool:
    """Admission control over ``count`` URLs; create it inside the event loop that uses it.

    Args:
        count: how many base URLs.
        limit: requests in flight per URL.
        strikes: retryable failures in a row that bench a URL.
        cooldown_s: the first bench; it doubles with every further failure, up to 32 times as long.
        on_bench: called with a URL's index each time it is benched (or benched for longer).
    """

    def __init__(self, count: int, limit: int, strikes: int = 5, cooldown_s: float = 2.0,
                 on_bench: Callable[[int], None] | None = None):
        self.limit = limit
        self.in_flight = [0] * count
        self.failures = [0] * count  # retryable failures in a row
        self.benched_until = [0.0] * count
        self._strikes = strikes
        self._cooldown_s = cooldown_s
        self._on_bench = on_bench
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._next = 0  # where the scan starts, so that ties spread over the URLs

    async def acquire(self, avoid: int = -1) -> int:
        """Wait for room and take it; returns the URL's index. ``avoid`` (the URL that just failed) is
        taken only when it is the only one with room."""
        if not self._waiters:
            i = self._pick(avoid)
            if i >= 0:
                self.in_flight[i] += 1
                return i
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        while True:
            try:
                await fut
            except asyncio.CancelledError:
                self._forget(fut)
                raise
            i = self._pick(avoid)
            if i >= 0:
                self.in_flight[i] += 1
                return i
            # The slot that woke us is on a benched URL: wait again, at the head of the queue.
            fut = asyncio.get_running_loop().create_future()
            self._waiters.appendleft(fut)

    def release(self, i: int, failed: bool | None = False) -> None:
        """Give the slot back, noting whether the attempt failed in a way that may be the server's
        (None: it was cancelled, which says nothing about the server)."""
        self.in_flight[i] -= 1
        if failed is False:
            self.failures[i] = 0
        elif failed:
            self.failures[i] += 1
            over = self.failures[i] - self._strikes
            if over >= 0:
                self.benched_until[i] = time.monotonic() + self._cooldown_s * 2 ** min(over, 5)
                if self._on_bench is not None:
                    self._on_bench(i)
        self._wake()

    def _pick(self, avoid: int) -> int:
        """The least-busy URL with room (-1 if none may be used now): unbenched first, then not ``avoid``."""
        k = len(self.in_flight)
        if k == 1:
            return 0 if self.in_flight[0] < self.limit else -1
        now = time.monotonic()
        start, self._next = self._next, (self._next + 1) % k
        best, best_key = -1, (True, True, 0)
        for j in range(start, start + k):
            i = j % k
            load = self.in_flight[i]
            if load >= self.limit:
                continue
            key = (self.benched_until[i] > now, i == avoid, load)
            if best < 0 or key < best_key:
                best, best_key = i, key
        if best >= 0 and best_key[0] and any(t <= now for t in self.benched_until):
            return -1  # only benched URLs have room, but a healthy one exists: wait for it
        return best

    def _wake(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def _forget(self, fut: asyncio.Future[None]) -> None:
        """A waiter was cancelled: drop it, and pass on a wake-up it received but cannot use."""
        if fut.done() and not fut.cancelled():
            self._wake()
        elif fut in self._waiters:
            self._waiters.remove(fut)
