"""A scripted OpenAI-compatible chat server for tests and benchmarks.

Run it as its own process (so that server and client use different cores)::

    python -m turnwise.testing.scripted_server --port 0 --latency-ms 100 --jitter-ms 80 \
        --capacity 64 --fault-rate 0 --seed 0

It prints its URL (``http://127.0.0.1:PORT/v1``) as the first line of stdout. In tests, use
``serve_in_thread`` (a context manager yielding a handle with the URL and the live stats) or
``spawn_server`` (the process above, waiting for its URL), both in :mod:`turnwise.testing.scripted_runner`.

Everything is deterministic: the reply comes from the request (or from ``script(request_json)``), the
latency from a hash of the request body and the seed, and whether a request fails from a hash of
(body, how many times this body has been seen, seed). So a retried request can succeed where the first
attempt failed, and a run is reproducible.

Replies: ``--reply echo`` (the default) answers ``reply to: <the last user message>``; ``--reply question``
answers every request with a distinct, plausible question drawn from a hash of the body (a stand-in for
a user simulator: simulated user turns pass turnwise's filters, and the assistant's turns are questions
too, which nothing checks).

Endpoints: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /stats``, ``POST /stats/reset``, and
``POST /config`` with a JSON object of new ``latency_ms``, ``jitter_ms`` or ``fault_rate`` values (a server that
turns slow or starts failing mid-run; it answers with the settings now in force).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import signal
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

logger = logging.getLogger(__name__)

FAULT_KINDS = ("429", "500", "slow", "malformed", "drop")  # transient: a retry may succeed
ALL_FAULT_KINDS = (*FAULT_KINDS, "400")  # 400: a request the server rejects; a client must not retry it

Script = Callable[[dict[str, Any]], "str | list[str]"]
REPLY_MODES = ("echo", "question")


@dataclass
class ServerConfig:
    """How the scripted server behaves.

    Attributes:
        latency_ms: mean service time of a successful request, counted from admission.
        jitter_ms: latency is uniform in [latency_ms - jitter_ms, latency_ms + jitter_ms] (floored at 0).
        capacity: requests in service at once; the rest wait for a slot (as on a real inference server).
        fault_rate: share of attempts that fail, in [0, 1].
        fault_kinds: the mix of faults, equally weighted (repeat a kind to weigh it more):
            ``429`` (with ``retry-after``), ``500``, ``slow`` (sleeps ``slow_s``, past a client's timeout),
            ``malformed`` (a 200 with a truncated JSON body), ``drop`` (the connection closes unanswered),
            and, outside the default mix, ``400`` (rejected; its message echoes the Authorization header,
            as careless servers do, so that tests can check a client keeps keys out of its errors).
        fail_first: the first ``fail_first`` attempts of every body fail (kind drawn from the mix), on top of
            ``fault_rate``: a deterministic "fails, then succeeds" for tests.
        retry_after_s: the ``retry-after`` a 429 carries, in seconds.
        slow_s: how long a ``slow`` fault sleeps before answering.
        seed: changes every latency and fault decision.
        script: ``script(request_json) -> str | list[str]`` producing the reply text(s); a string is used
            for every sample, a list gives one text per sample (cycled when shorter than ``n``).
        reverse_choices: list the choices last-index first (clients must order them by ``index``).
        reply: what an unscripted reply says: ``echo`` (:func:`default_reply`) or ``question``
            (:func:`question_reply`).
        model: the model name ``/v1/models`` reports.
    """

    latency_ms: float = 100.0
    jitter_ms: float = 80.0
    capacity: int = 64
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    fail_first: int = 0
    retry_after_s: float = 0.1
    slow_s: float = 30.0
    seed: int = 0
    script: Script | None = None
    reverse_choices: bool = False
    reply: str = "echo"
    model: str = "scripted"

    def __post_init__(self) -> None:
        unknown = set(self.fault_kinds) - set(ALL_FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(ALL_FAULT_KINDS)}")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be in [0, 1], got {self.fault_rate}")
        if self.capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {self.capacity}")
        if self.reply not in REPLY_MODES:
            raise ValueError(f"reply must be one of {', '.join(REPLY_MODES)}, got {self.reply!r}")
        self.fault_kinds = tuple(self.fault_kinds)


def default_reply(request: dict[str, Any]) -> str:
    """``reply to: <the last user message, shortened to 60 characters>``."""
    last = next((m.get("content", "") for m in reversed(request.get("messages", [])) if m.get("role") == "user"), "")
    last = " ".join(str(last).split())
    return f"reply to: {last[:57] + '...' if len(last) > 60 else last}"


_TOPICS = (
    "the cache", "the second option", "memory use", "error handling", "the first step", "unit tests",
    "the database", "latency", "the budget", "security", "the timeline", "the API", "logging", "batch size",
    "the proof", "the example", "edge cases", "performance", "the deadline", "the team", "the config",
    "retries", "the schema", "concurrency", "the tokenizer", "the dataset", "the loss", "the baseline",
    "the results", "the trade-off", "the recipe", "the garden", "the river", "the old library", "the red box",
    "the small dog", "the new car", "the museum", "the train", "the weather", "the price", "the author",
)
_FRAMES = (
    "Why does {a} matter here?", "Could you give an example with {a}?", "What happens to {a} if {b} changes?",
    "How would you explain {a} to a beginner?", "Is that better than {b}?", "How does it compare with {b}?",
    "What are the risks of {a}?", "Can you say more about {a} and {b}?", "Which one should I pick for {a}?",
    "What did you mean by {a}?", "And what about {b}?", "Does {a} still hold when {b} is large?",
    "Could you rewrite that with {a} in mind?", "Where does {b} come in?", "How long would {a} take?",
    "Why not start with {b} instead?",
)


def question_reply(digest: bytes) -> str:
    """A plausible question chosen by a request body's digest: distinct bodies rarely share one."""
    pick = int.from_bytes(hashlib.blake2b(digest, digest_size=8, person=b"question").digest(), "big")
    frame = _FRAMES[pick % len(_FRAMES)]
    a = _TOPICS[(pick >> 8) % len(_TOPICS)]
    b = _TOPICS[(pick >> 16) % len(_TOPICS)]
    return frame.format(a=a, b=b) + f" (#{(pick >> 24) % 10000})"


def _unit(digest: bytes, person: bytes, seed_key: bytes, extra: bytes = b"") -> float:
    """A deterministic number in [0, 1) from a body digest, a purpose tag and the seed."""
    h = hashlib.blake2b(digest + extra, digest_size=8, key=seed_key, person=person).digest()
    return int.from_bytes(h, "big") / 2.0**64


class ServerStats:
    """What the server has done since the last reset; ``snapshot()`` is what ``GET /stats`` returns."""

    def __init__(self) -> None:
        self.requests = 0
        self.served = 0
        self.latency_sum_s = 0.0
        self.in_service = 0
        self.max_in_service = 0
        self.status_counts: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.seen: dict[bytes, int] = {}
        self.successes: Counter[bytes] = Counter()
        self.authorization: Counter[str] = Counter()  # Authorization headers received (tests check keys)

    def snapshot(self) -> dict[str, Any]:
        most = max(self.successes.values(), default=0)
        return {
            "requests": self.requests,
            "served": self.served,
            "latency_sum_s": self.latency_sum_s,
            "in_service": self.in_service,
            "max_in_service": self.max_in_service,
            "status_counts": dict(self.status_counts),
            "faults": dict(self.faults),
            "distinct_bodies": len(self.seen),
            "bodies_served": len(self.successes),
            "max_successes_per_body": most,
            "duplicate_successes": sum(1 for v in self.successes.values() if v > 1),
        }


class ScriptedServer:
    """The aiohttp application and its state; build one per server (it is not thread-safe).

    Args:
        config: how to behave; defaults to 100 ± 80 ms, 64 in service, no faults.
    """

    def __init__(self, config: ServerConfig | None = None):
        self.config = config or ServerConfig()
        self.stats = ServerStats()
        self._seed_key = str(self.config.seed).encode()
        self._slots: asyncio.Semaphore | None = None
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self._chat)
        self.app.router.add_get("/v1/models", self._models)
        self.app.router.add_get("/stats", self._stats)
        self.app.router.add_post("/stats/reset", self._reset)
        self.app.router.add_post("/config", self._configure)

    def latency_s(self, digest: bytes) -> float:
        """The service time of a successful request with this body digest."""
        c = self.config
        u = _unit(digest, b"latency", self._seed_key)
        return max(0.0, c.latency_ms + c.jitter_ms * (2.0 * u - 1.0)) / 1000.0

    def fault(self, digest: bytes, seen: int) -> str | None:
        """The fault for the ``seen``-th attempt of this body, or None."""
        c = self.config
        if not c.fault_kinds or (c.fault_rate <= 0.0 and seen > c.fail_first):
            return None
        extra = seen.to_bytes(4, "big")
        if seen > c.fail_first and _unit(digest, b"fault", self._seed_key, extra) >= c.fault_rate:
            return None
        pick = _unit(digest, b"kind", self._seed_key, extra)
        return c.fault_kinds[int(pick * len(c.fault_kinds))]

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        stats = self.stats
        stats.requests += 1
        auth = request.headers.get("Authorization")
        if auth is not None:
            stats.authorization[auth] += 1
        digest = hashlib.blake2b(body, digest_size=16).digest()
        seen = stats.seen[digest] = stats.seen.get(digest, 0) + 1
        fault = self.fault(digest, seen)
        if fault is not None:
            stats.faults[fault] += 1
            early = self._early_fault(fault, request)
            if early is not None:
                return early
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
            stats.status_counts["400"] += 1
            return web.Response(status=400, content_type="application/json",
                                text='{"error": {"message": "body must be a JSON object with messages"}}')
        latency = self.latency_s(digest)
        await self._serve(latency + (self.config.slow_s if fault == "slow" else 0.0))
        if fault == "malformed":
            stats.status_counts["200"] += 1
            return web.Response(body=b'{"id": "x", "choices": [{"index": 0, "mess', content_type="application/json")
        reply = self._reply(payload, digest)
        stats.status_counts["200"] += 1
        stats.served += 1
        stats.latency_sum_s += latency
        stats.successes[digest] += 1
        return web.Response(body=json.dumps(reply).encode(), content_type="application/json")

    def _early_fault(self, fault: str, request: web.Request) -> web.StreamResponse | None:
        """Faults answered before admission (as a rate limiter or a crashed worker would)."""
        if fault == "429":
            self.stats.status_counts["429"] += 1
            headers = {"Retry-After": f"{self.config.retry_after_s:g}"}
            return web.Response(status=429, headers=headers, content_type="application/json",
                                text='{"error": {"message": "rate limited (scripted)"}}')
        if fault == "500":
            self.stats.status_counts["500"] += 1
            return web.Response(status=500, content_type="application/json",
                                text='{"error": {"message": "internal error (scripted)"}}')
        if fault == "400":
            self.stats.status_counts["400"] += 1
            echo = request.headers.get("Authorization", "")
            return web.Response(status=400, content_type="application/json",
                                text=json.dumps({"error": {"message": f"bad request (scripted); got {echo}"}}))
        if fault == "drop":
            self.stats.status_counts["dropped"] += 1
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError  # nothing more is written on a closed connection
        return None

    async def _serve(self, seconds: float) -> None:
        """Hold a capacity slot for ``seconds``; the clock starts once the request is admitted."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.config.capacity)
        stats = self.stats
        async with self._slots:
            stats.in_service += 1
            stats.max_in_service = max(stats.max_in_service, stats.in_service)
            try:
                await asyncio.sleep(seconds)
            finally:
                stats.in_service -= 1

    def _reply(self, payload: dict[str, Any], digest: bytes) -> dict[str, Any]:
        n = int(payload.get("n") or 1)
        texts = self._texts(payload, n, digest)
        max_tokens = int(payload.get("max_tokens") or 1 << 30)
        stop = payload.get("stop") or []
        stop = [stop] if isinstance(stop, str) else stop
        choices = []
        completion_tokens = 0
        for i, text in enumerate(texts):
            text, reason = _finish(text, stop, max_tokens)
            completion_tokens += len(text.split())
            choices.append({"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": reason})
        if self.config.reverse_choices:
            choices.reverse()
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in payload["messages"])
        return {
            "id": "chatcmpl-scripted",
            "object": "chat.completion",
            "model": payload.get("model", self.config.model),
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _texts(self, payload: dict[str, Any], n: int, digest: bytes) -> list[str]:
        if self.config.script is None:
            base = question_reply(digest) if self.config.reply == "question" else default_reply(payload)
            return [base] if n == 1 else [f"{base} (sample {i})" for i in range(n)]
        out = self.config.script(payload)
        if isinstance(out, str):
            return [out] * n
        if not out:
            raise ValueError("script returned no texts")
        return [out[i % len(out)] for i in range(n)]

    async def _models(self, request: web.Request) -> web.Response:
        data = {"object": "list", "data": [{"id": self.config.model, "object": "model", "owned_by": "turnwise"}]}
        return web.json_response(data)

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.snapshot())

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})

    async def _configure(self, request: web.Request) -> web.Response:
        try:
            changes = await request.json()
        except ValueError:
            changes = None
        allowed = {"latency_ms", "jitter_ms", "fault_rate"}
        if not isinstance(changes, dict) or not set(changes) <= allowed or not all(
                isinstance(v, (int, float)) and v >= 0 for v in changes.values()):
            return web.json_response({"error": {"message": f"POST /config takes numbers >= 0 for {sorted(allowed)}"}},
                                     status=400)
        if changes.get("fault_rate", 0) > 1:
            return web.json_response({"error": {"message": "fault_rate must be in [0, 1]"}}, status=400)
        for name, value in changes.items():
            setattr(self.config, name, float(value))
        return web.json_response({name: getattr(self.config, name) for name in sorted(allowed)})

    def reset(self) -> None:
        """Forget all counts, including how often each body was seen."""
        self.stats = ServerStats()


def _finish(text: str, stop: list[str], max_tokens: int) -> tuple[str, str]:
    """Cut a reply at the first stop string, then at ``max_tokens`` whitespace tokens."""
    for s in stop:
        if s and s in text:
            text = text[: text.index(s)]
    words = text.split()
    if len(words) > max_tokens:
        return " ".join(words[:max_tokens]), "length"
    return text, "stop"


async def start(server: ScriptedServer, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, str]:
    """Start serving in the running loop; returns the runner (``await runner.cleanup()``) and the base URL."""
    # handler_cancellation: a client that gives up (timeout) frees its capacity slot at once.
    runner = web.AppRunner(server.app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    return runner, f"http://{bound_host}:{bound_port}/v1"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--latency-ms", type=float, default=100.0)
    p.add_argument("--jitter-ms", type=float, default=80.0)
    p.add_argument("--capacity", type=int, default=64)
    p.add_argument("--fault-rate", type=float, default=0.0)
    p.add_argument("--faults", default=",".join(FAULT_KINDS), help="comma-separated fault kinds")
    p.add_argument("--fail-first", type=int, default=0, help="the first N attempts of every body fail")
    p.add_argument("--retry-after-s", type=float, default=0.1)
    p.add_argument("--slow-s", type=float, default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reply", choices=REPLY_MODES, default="echo", help="echo the last user turn, or ask a question")
    return p


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        latency_ms=args.latency_ms, jitter_ms=args.jitter_ms, capacity=args.capacity,
        fault_rate=args.fault_rate, fault_kinds=tuple(k for k in args.faults.split(",") if k),
        fail_first=args.fail_first, retry_after_s=args.retry_after_s, slow_s=args.slow_s, seed=args.seed,
        reply=args.reply,
    )


async def _serve_forever(config: ServerConfig, host: str, port: int) -> None:
    runner, url = await start(ScriptedServer(config), host, port)
    print(url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGINT or SIGTERM; the first stdout line is the base URL."""
    args = build_parser().parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("the scripted server binds to the loopback interface only")
    asyncio.run(_serve_forever(config_from_args(args), args.host, args.port))


if __name__ == "__main__":
    main()
