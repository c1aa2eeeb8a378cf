"""Option types shared by commands, and the small glue that turns options into specs and progress bars."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from turnwise.models.base import ModelSpec

stderr = Console(stderr=True)

Model = Annotated[
    str, typer.Option("--model", "-m", help="Hub id or local path (local, vllm), or the served name (openai).")
]
Backend = Annotated[
    str, typer.Option(help="openai, local, vllm, module:Class, or auto (openai with --base-url, local for a dir).")
]
BaseUrl = Annotated[
    list[str] | None,
    typer.Option("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 (repeat for several)."),
]
ApiKeyEnv = Annotated[
    str | None, typer.Option(help="Name of the environment variable that holds the API key (the key is never stored).")
]
Concurrency = Annotated[int, typer.Option(help="Requests in flight per base URL (openai) or batch size (local, vllm).")]
Timeout = Annotated[float, typer.Option("--timeout", help="Per-request timeout in seconds (openai).")]
MaxRetries = Annotated[int, typer.Option(help="Retries on 429/5xx/timeouts/broken replies (openai).")]
ChatTemplate = Annotated[
    str | None, typer.Option(help="Chat template (Jinja file or inline) for models that ship none.")
]
Dtype = Annotated[str, typer.Option(help="Torch dtype for local and vllm: auto, float32, bfloat16, float16.")]
Cache = Annotated[
    Path | None, typer.Option(help="Response cache file (default: $TURNWISE_CACHE or ~/.cache/turnwise).")
]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Call the model even for requests answered before.")]


def build_spec(
    model: str,
    backend: str,
    base_url: list[str] | None,
    api_key_env: str | None,
    concurrency: int,
    timeout: float,
    max_retries: int,
    chat_template: str | None,
    dtype: str,
) -> ModelSpec:
    return ModelSpec(
        model=model,
        backend=backend,
        base_urls=list(base_url or []),
        api_key_env=api_key_env,
        concurrency=concurrency,
        timeout_s=timeout,
        max_retries=max_retries,
        chat_template=chat_template,
        dtype=dtype,
    )


def count_lines(path: Path) -> int | None:
    """Records in a JSON Lines file, counted cheaply for a progress bar's total (None for a JSON array)."""
    with open(path, "rb") as f:
        head = f.read(1024).lstrip()
        if head.startswith(b"["):
            return None
        f.seek(0)
        return sum(1 for line in f if line.strip())


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Progress]:
    """A progress bar on stderr; it hides itself when stderr is not a terminal."""
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, TimeRemainingColumn(), console=stderr, transient=False) as progress:
        progress.add_task(description, total=total)
        yield progress
