"""Run `transformers serve` on a local model directory, on loopback, for tests and the quickstart.

It is a real OpenAI-compatible server that runs on a CPU, so the `openai` backend is exercised against
the same kind of server a user points it at. Needs the `serve` extra: ``pip install 'turnwise[serve]'``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from turnwise.errors import TurnwiseError
from turnwise.testing.scripted_runner import stop_process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command(model_dir: Path, port: int) -> list[str]:
    exe = shutil.which("transformers", path=str(Path(sys.executable).parent)) or shutil.which("transformers")
    if exe is None:
        raise TurnwiseError("`transformers serve` is not installed; install it with: pip install 'turnwise[serve]'")
    return [exe, "serve", str(model_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
            "--log-level", "error"]


@contextmanager
def serve_model(
    model_dir: str | Path, *, start_timeout_s: float = 180.0, log_path: Path | None = None
) -> Iterator[str]:
    """Start `transformers serve MODEL_DIR` on 127.0.0.1 and yield its base URL (``http://…/v1``).

    The server is stopped when the block exits. Hub access is switched off: the model must be local.
    """
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_UPDATE_CHECK": "1", "TOKENIZERS_PARALLELISM": "false"}
    log = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen(_command(Path(model_dir), port), stdout=log, stderr=subprocess.STDOUT, env=env)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_ready(proc, base_url, start_timeout_s)
        yield base_url
    finally:
        stop_process(proc, timeout_s=15)
        if log_path:
            log.close()


def _wait_ready(proc: subprocess.Popen, base_url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TurnwiseError(f"`transformers serve` exited with code {proc.returncode} before it was ready")
        try:
            # /health, not /v1/models: the latter answers 500 where no hub cache folder exists yet.
            with urllib.request.urlopen(base_url.removesuffix("/v1") + "/health", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise TurnwiseError(f"`transformers serve` was not ready within {timeout_s:.0f} s")
