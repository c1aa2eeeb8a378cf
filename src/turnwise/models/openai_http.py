"""The ``openai`` backend: any server that speaks OpenAI chat completions (vLLM, SGLang, llama.cpp,
``transformers serve``, hosted APIs), over plain aiohttp.

Why not the ``openai`` SDK or httpx: at synthesis scale the client's CPU per call decides how many
requests one core can keep in flight. Measured on a 2-core machine, the SDK costs about 4.6 ms of CPU
per call and httpx about 11 ms, against about 0.35 ms for a plain aiohttp client; so the hot path here
is one ``json.dumps``, one POST on a pooled connection, one ``json.loads``, and nothing logged.

Several base URLs share the load: each has at most ``spec.concurrency`` requests in flight, a request
goes to the URL with the fewest, a retry prefers a URL other than the one that just failed, and a URL
that keeps failing is benched for a while (see :mod:`turnwise.models.url_pool`).
Retries (429, 5xx, timeouts, dropped connections, broken replies) back off exponentially with full
jitter, or wait what ``retry-after`` asks. A request that runs out of retries becomes a Completion with
an ``error``; ``chat`` never raises for a single request.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import aiohttp

from turnwise.data.schema import Message
from turnwise.errors import ConfigError
from turnwise.models.base import Completion, GenerationSettings, ModelSpec, Usage
from turnwise.models.url_pool import UrlPool

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_MAX_BACKOFF_S = 60.0


class _Failure(Exception):
    """One failed attempt: why, whether a retry may help, and how long the server asked us to wait."""

    def __init__(self, reason: str, retryable: bool = True, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.url = -1  # index of the base URL that failed, set by the attempt


class OpenAIChatModel:
    """A ChatModel over one or more OpenAI-compatible endpoints.

    Args:
        spec: ``base_urls`` (each ending in ``/v1``), ``concurrency`` (in flight per URL), ``timeout_s``,
            ``max_retries``, ``backoff_s``, ``api_key_env``. Options: ``max_backoff_s`` caps a single
            wait (default 60 s), ``retry-after`` included; ``url_strikes`` (default 5) failures in a row
            bench a URL for ``url_cooldown_s`` (default 2 s, doubling while it keeps failing).

    Attributes:
        http_calls: HTTP attempts made (0 after a run answered wholly from the cache).
        retries_by_reason: retries taken, by reason (``http 429``, ``timeout``, ...).
        failures_by_reason: requests given up on, by the reason of their last attempt.
        calls_by_url: HTTP attempts per base URL.
        failures_by_url: failed HTTP attempts per base URL (any reason: refused, timeout, 5xx, 429, ...).
        benches_by_url: how often each base URL was benched for failing (see :mod:`turnwise.models.url_pool`).

    Raises:
        ConfigError: no base URL, or ``api_key_env`` names an unset variable.
    """

    backend = "openai"

    def __init__(self, spec: ModelSpec):
        if not spec.base_urls:
            raise ConfigError(f"the openai backend needs at least one base URL for model {spec.model!r}")
        if spec.concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, got {spec.concurrency}")
        self.model = spec.model
        self.base_urls = [u.rstrip("/") for u in spec.base_urls]
        self._endpoints = [f"{u}/chat/completions" for u in self.base_urls]
        self._concurrency = spec.concurrency
        self._timeout = aiohttp.ClientTimeout(total=spec.timeout_s)
        self._max_retries = max(0, spec.max_retries)
        self._backoff_s = spec.backoff_s
        self._max_backoff_s = float(spec.options.get("max_backoff_s", DEFAULT_MAX_BACKOFF_S))
        self._strikes = int(spec.options.get("url_strikes", 5))
        self._cooldown_s = float(spec.options.get("url_cooldown_s", 2.0))
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        self._secret = _read_key(spec.api_key_env)
        if self._secret:
            self._headers["Authorization"] = f"Bearer {self._secret}"
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: UrlPool | None = None
        self.http_calls = 0
        self.retries_by_reason: Counter[str] = Counter()
        self.failures_by_reason: Counter[str] = Counter()
        self.calls_by_url: Counter[str] = Counter()
        self.failures_by_url: Counter[str] = Counter()
        self.benches_by_url: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"OpenAIChatModel(model={self.model!r}, base_urls={self.base_urls!r})"

    @property
    def cache_identity(self) -> dict[str, Any]:
        """What the response cache keys on: not the URLs (servers of one model share entries), never the key."""
        return {"backend": self.backend, "model": self.model}

    def traffic(self) -> dict[str, Any]:
        """What this backend sent where, for a run's manifest: attempts, failed attempts and benches per server,
        retries and give-ups by reason."""
        servers = {u: {"calls": self.calls_by_url[u], "failed": self.failures_by_url[u],
                       "benched": self.benches_by_url[u]} for u in self.base_urls}
        return {"http_calls": self.http_calls, "servers": servers, "retries_by_reason": dict(self.retries_by_reason),
                "failures_by_reason": dict(self.failures_by_reason)}

    async def chat(self, conversations: Sequence[list[Message]], settings: GenerationSettings) -> list[Completion]:
        """Answer every conversation, concurrently, in order; failures come back as Completions with ``error``.

        A pool of workers (twice the slots, so that requests sleeping in backoff leave none idle) takes
        conversations in order; a batch of thousands costs a few dozen tasks, not thousands.
        """
        if not conversations:
            return []
        session = self._ensure_session()
        base = _payload_base(self.model, settings)
        n = settings.n
        if len(conversations) == 1:
            return [await self._request(session, base, conversations[0], n)]
        results: list[Completion] = [Completion()] * len(conversations)
        todo = iter(enumerate(conversations))

        async def worker() -> None:
            for i, messages in todo:
                results[i] = await self._request(session, base, messages, n)

        workers = min(len(conversations), 2 * self._concurrency * len(self._endpoints))
        await asyncio.gather(*(worker() for _ in range(workers)))
        return results

    async def aclose(self) -> None:
        """Close the HTTP session (idempotent)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        """One session per event loop, created inside it (aiohttp binds sessions to their loop)."""
        loop = asyncio.get_running_loop()
        if self._session is not None and self._loop is loop and not self._session.closed:
            return self._session
        self._drop_stale_session()
        total = self._concurrency * len(self._endpoints)
        connector = aiohttp.TCPConnector(limit=total, limit_per_host=0, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector, headers=self._headers, timeout=self._timeout, raise_for_status=False
        )
        self._loop = loop
        self._pool = UrlPool(len(self._endpoints), self._concurrency, self._strikes, self._cooldown_s,
                             on_bench=lambda i: self.benches_by_url.update((self.base_urls[i],)))
        return self._session

    def _drop_stale_session(self) -> None:
        old, old_loop = self._session, self._loop
        self._session = None
        if old is None or old.closed or old_loop is None:
            return
        if old_loop.is_running():  # another thread's loop: close it there
            asyncio.run_coroutine_threadsafe(old.close(), old_loop)
        else:
            # Its loop has stopped, so it cannot be awaited any more; the garbage collector closes its
            # sockets (with a ResourceWarning if some were pooled: call aclose() in the loop that used it).
            old.detach()

    async def _request(
        self, session: aiohttp.ClientSession, base: dict[str, Any], messages: list[Message], n: int
    ) -> Completion:
        body = json.dumps({**base, "messages": messages}).encode()
        failed_url = -1
        attempt = 0
        while True:
            try:
                completion = await self._attempt(session, body, n, failed_url)
                completion.attempts = attempt + 1
                return completion
            except Exception as exc:  # failures are data: one odd reply must not sink the batch
                failure = exc if isinstance(exc, _Failure) else self._unexpected(exc)
                if not failure.retryable or attempt >= self._max_retries:
                    return self._give_up(failure, attempt + 1)
                self.retries_by_reason[failure.reason] += 1
                failed_url = failure.url
                delay = self._delay(attempt, failure.retry_after)
                logger.debug("retry %d after %s in %.3f s", attempt + 1, failure.reason, delay)
                await asyncio.sleep(delay)
                attempt += 1

    async def _attempt(self, session: aiohttp.ClientSession, body: bytes, n: int, avoid: int) -> Completion:
        """One HTTP attempt on the least-busy URL; a _Failure carries the index of the URL that failed."""
        pool = self._pool
        assert pool is not None
        i = await pool.acquire(avoid)
        self.http_calls += 1
        self.calls_by_url[self.base_urls[i]] += 1
        failed: bool | None = None
        try:
            status, headers, raw = await self._post(session, self._endpoints[i], body)
            if status != 200:
                raise self._status_failure(status, headers, raw)
            completion = _parse(raw, n)
            failed = False
            return completion
        except _Failure as failure:
            failure.url = i
            failed = failure.retryable
            self.failures_by_url[self.base_urls[i]] += 1
            raise
        finally:
            pool.release(i, failed)

    async def _post(self, session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, Any, bytes]:
        try:
            async with session.post(url, data=body) as resp:
                return resp.status, resp.headers, await resp.read()
        except asyncio.TimeoutError:
            raise _Failure("timeout") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise _Failure(f"connection error ({type(exc).__name__})") from None

    def _status_failure(self, status: int, headers: Any, raw: bytes) -> _Failure:
        if status in RETRY_STATUSES:
            return _Failure(f"http {status}", retry_after=_retry_after(headers.get("Retry-After")))
        return _Failure(f"http {status}: {self._redact(raw[:200].decode('utf-8', 'replace'))}", retryable=False)

    def _unexpected(self, exc: Exception) -> _Failure:
        logger.debug("unexpected error in a request", exc_info=True)
        return _Failure(f"unexpected error ({type(exc).__name__}: {self._redact(str(exc))[:200]})", retryable=False)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """``retry-after`` when the server sent one, else full jitter on ``backoff_s * 2**attempt``; capped."""
        if retry_after is not None:
            return min(retry_after, self._max_backoff_s)
        return random.uniform(0.0, min(self._max_backoff_s, self._backoff_s * 2.0**attempt))

    def _give_up(self, failure: _Failure, attempts: int) -> Completion:
        reason = failure.reason.split(":", 1)[0] if not failure.retryable else failure.reason
        self.failures_by_reason[reason] += 1
        logger.debug("giving up after %d attempts: %s", attempts, failure.reason)
        noun = "attempt" if attempts == 1 else "attempts"
        return Completion(error=f"{failure.reason} after {attempts} {noun}", attempts=attempts)

    def _redact(self, text: str) -> str:
        """Server text may echo headers back; the key must never reach an error string."""
        return text.replace(self._secret, "***") if self._secret else text


def _read_key(env_name: str | None) -> str:
    if not env_name:
        return ""
    key = os.environ.get(env_name)
    if not key:
        raise ConfigError(f"environment variable {env_name} (api_key_env) is not set")
    return key


def _payload_base(model: str, settings: GenerationSettings) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": model,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "max_tokens": settings.max_tokens,
        "n": settings.n,
    }
    if settings.seed is not None:
        base["seed"] = settings.seed
    if settings.stop:
        base["stop"] = list(settings.stop)
    if settings.json_schema is not None:  # structured outputs, as OpenAI, vLLM, SGLang and llama.cpp servers take it
        base["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "reply", "schema": json.loads(settings.json_schema),
                                                   "strict": True}}
    return base


def _parse(raw: bytes, n: int) -> Completion:
    """A chat-completion body to a Completion; a broken body raises a retryable _Failure."""
    try:
        data = json.loads(raw)
        choices = sorted(data["choices"], key=lambda c: c.get("index", 0))
        texts = [c["message"]["content"] for c in choices]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise _Failure("malformed reply") from None
    if not choices or not all(isinstance(t, str) for t in texts):
        raise _Failure("malformed reply")
    if len(texts) != n:
        # Retrying will not help a server that ignores n (llama.cpp does); say so plainly.
        raise _Failure(f"server returned {len(texts)} of {n} choices (does it support n?)", retryable=False)
    usage = data.get("usage") or {}
    return Completion(
        texts=texts,
        finish_reasons=[c.get("finish_reason") or "stop" for c in choices],
        usage=Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)),
    )


def _retry_after(value: str | None) -> float | None:
    """``retry-after`` as seconds (a number or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
