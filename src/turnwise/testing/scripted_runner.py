"""Two ways to run the scripted server: in a background thread (tests) or as a process (benchmarks).

In a test::

    with serve_in_thread(ServerConfig(latency_ms=5, jitter_ms=2)) as server:
        spec = ModelSpec(model="m", backend="openai", base_urls=[server.base_url])
        ...
        assert server.stats()["served"] == 3

In a benchmark, where the server must not share the client's core::

    with spawn_server(ServerConfig(capacity=64)) as base_url:
        ...
"""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from turnwise.testing.scripted_server import ScriptedServer, ServerConfig, start


@dataclass
class ServerHandle:
    """A running in-thread server.

    Attributes:
        base_url: ``http://127.0.0.1:PORT/v1``.
        server: the server itself (its config, its live ``stats``).
        loop: the server thread's event loop.
    """

    base_url: str
    server: ScriptedServer
    loop: asyncio.AbstractEventLoop

    def stats(self) -> dict[str, Any]:
        """A snapshot of the server's counters, taken on the server's own thread."""
        return self._on_loop(self.server.stats.snapshot)

    def reset(self) -> None:
        """Forget all counts (call it between phases, while no request is in flight)."""
        self._on_loop(self.server.reset)

    def successes_per_body(self) -> dict[bytes, int]:
        """Successful replies per distinct request body (keyed by the body's digest)."""
        return self._on_loop(lambda: dict(self.server.stats.successes))

    def _on_loop(self, fn: Any) -> Any:
        async def call() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout=10)


@contextmanager
def serve_in_thread(config: ServerConfig | None = None, **overrides: Any) -> Iterator[ServerHandle]:
    """Serve on 127.0.0.1 (a free port) from a daemon thread with its own event loop.

    Args:
        config: the server's behaviour; ``overrides`` set single fields on a default config instead.
    """
    if config is None:
        config = ServerConfig(**overrides)
    elif overrides:
        raise TypeError("give either a config or field overrides, not both")
    server = ScriptedServer(config)
    loop = asyncio.new_event_loop()
    ready: dict[str, Any] = {}
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            ready["runner"], ready["url"] = loop.run_until_complete(start(server))
        except BaseException as exc:  # surfaced to the caller below
            ready["error"] = exc
        started.set()
        if "error" not in ready:
            loop.run_forever()
        loop.close()

    thread = threading.Thread(target=run, name="scripted-server", daemon=True)
    thread.start()
    if not started.wait(timeout=30):
        raise RuntimeError("scripted server did not start within 30 s")
    if "error" in ready:
        raise RuntimeError(f"scripted server failed to start: {ready['error']}") from ready["error"]
    try:
        yield ServerHandle(ready["url"], server, loop)
    finally:
        asyncio.run_coroutine_threadsafe(ready["runner"].cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)


def server_args(config: ServerConfig, port: int = 0) -> list[str]:
    """Command-line arguments reproducing ``config`` (a ``script`` cannot cross a process boundary)."""
    if config.script is not None or config.reverse_choices:
        raise ValueError("script and reverse_choices work only in-process (serve_in_thread)")
    return [
        "--port", str(port), "--latency-ms", str(config.latency_ms), "--jitter-ms", str(config.jitter_ms),
        "--capacity", str(config.capacity), "--fault-rate", str(config.fault_rate),
        "--faults", ",".join(config.fault_kinds), "--fail-first", str(config.fail_first),
        "--retry-after-s", str(config.retry_after_s),
        "--slow-s", str(config.slow_s), "--seed", str(config.seed), "--reply", config.reply,
    ]


@contextmanager
def spawn_server(config: ServerConfig | None = None, start_timeout_s: float = 30.0) -> Iterator[str]:
    """Run ``python -m turnwise.testing.scripted_server`` as a child process; yields its base URL.

    The process is terminated (then killed, if it lingers) when the block exits.
    """
    with spawn_server_process(config, start_timeout_s) as (url, _):
        yield url


@contextmanager
def spawn_server_process(config: ServerConfig | None = None, start_timeout_s: float = 30.0
                         ) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """:func:`spawn_server`, yielding the base URL and the process (for tests that kill a server mid-run)."""
    cmd = [sys.executable, "-m", "turnwise.testing.scripted_server", *server_args(config or ServerConfig())]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        yield _read_url(proc, start_timeout_s), proc
    finally:
        if proc.poll() is None:
            stop_process(proc)
        if proc.stdout is not None:
            proc.stdout.close()


def stop_process(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """Terminate a child process, and kill it if it lingers."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


def _read_url(proc: subprocess.Popen[str], timeout_s: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"scripted server exited with code {proc.returncode} before printing its URL")
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline().strip()
            if line.startswith("http://"):
                return line
            raise RuntimeError(f"scripted server printed {line!r} instead of its URL")
    raise RuntimeError(f"scripted server printed no URL within {timeout_s} s")
