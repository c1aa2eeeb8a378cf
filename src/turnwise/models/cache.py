"""A response cache in front of every backend, so a re-run or a resume pays for nothing twice.

Entries live in one SQLite file, keyed by a hash of (backend, model, generation settings, messages,
sample index). Only successful, non-empty completions are stored: a failed call is retried on the next run.
The file is opened in WAL mode and every write is its own short transaction, so a crash loses at most
the call in flight, and readers in other processes see finished entries at once.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from turnwise.data.schema import Message
from turnwise.models.base import ChatModel, Completion, GenerationSettings, Usage

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def default_cache_path() -> Path:
    """``$TURNWISE_CACHE`` if set, else ``~/.cache/turnwise/responses.sqlite``."""
    if os.environ.get("TURNWISE_CACHE"):
        return Path(os.environ["TURNWISE_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "turnwise" / "responses.sqlite"


def cache_key(identity: dict[str, Any], settings: GenerationSettings, messages: list[Message], index: int) -> str:
    """A stable hash of everything that determines a completion."""
    payload = {"id": identity, "settings": _settings_dict(settings), "messages": messages, "sample": index}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=256)
def _settings_dict(settings: GenerationSettings) -> dict[str, Any]:
    # asdict() deep-copies; on the hot path (one call per request) that alone cost ~40 µs.
    return settings.to_dict()


class ResponseCache:
    """SQLite-backed key/value store of completions; safe for concurrent use within one process.

    Args:
        path: the SQLite file; its folder is created when missing.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # isolation_level=None: autocommit, each statement is its own transaction.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not keys:
            return {}
        found: dict[str, dict[str, Any]] = {}
        with self._lock:
            for start in range(0, len(keys), 500):  # SQLite caps the number of bound parameters
                chunk = list(keys[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT key, value FROM responses WHERE key IN ({marks})", chunk)
                found.update((key, json.loads(value)) for key, value in rows)
        return found

    def put_many(self, items: Sequence[tuple[str, dict[str, Any]]]) -> None:
        now = time.time()
        rows = [(key, json.dumps(value, ensure_ascii=False), now) for key, value in items]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?)", rows)
            self._db.execute("COMMIT")

    def __bool__(self) -> bool:
        # An open cache is truthy even while empty: `model if cache else ...` must not skip a fresh cache.
        return True

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0


class CachedChatModel:
    """Wraps any ChatModel: answers from the cache where it can, calls the model for the rest.

    A conversation is a hit only when all ``settings.n`` samples are cached; otherwise all n are
    requested again (and overwrite what was there), so the samples of one call stay one coherent set.
    Identical requests in flight at the same time are sent once and share the answer, so a run and its
    re-run from the cache see the same completions.

    Args:
        inner: the backend to call on a miss.
        cache: where completions are kept.
    """

    def __init__(self, inner: ChatModel, cache: ResponseCache):
        self.inner = inner
        self.cache = cache
        self.backend = inner.backend
        self.model = inner.model
        self.stats = CacheStats()
        identity = getattr(inner, "cache_identity", None)
        self._identity = identity if identity is not None else {"backend": inner.backend, "model": inner.model}
        self._inflight: dict[str, asyncio.Future[Completion]] = {}

    def _keys(self, messages: list[Message], settings: GenerationSettings) -> list[str]:
        return [cache_key(self._identity, settings, messages, i) for i in range(settings.n)]

    async def chat(self, conversations: Sequence[list[Message]], settings: GenerationSettings) -> list[Completion]:
        keys = [self._keys(list(conv), settings) for conv in conversations]
        found = self.cache.get_many([k for ks in keys for k in ks])
        results: list[Completion | None] = [None] * len(conversations)
        missing: list[int] = []
        waiting: dict[int, asyncio.Future[Completion]] = {}
        for i, ks in enumerate(keys):
            if all(k in found for k in ks):
                results[i] = _from_entries([found[k] for k in ks])
            elif ks[0] in self._inflight:
                waiting[i] = self._inflight[ks[0]]  # the same request is already on its way: share its answer
            else:
                self._inflight[ks[0]] = asyncio.get_running_loop().create_future()
                missing.append(i)
        self.stats.hits += len(conversations) - len(missing)
        self.stats.misses += len(missing)
        if missing:
            await self._fetch(conversations, keys, missing, settings, results)
        for i, future in waiting.items():
            results[i] = _shared(await asyncio.shield(future))
        return [r for r in results if r is not None]

    async def _fetch(self, conversations: Sequence[list[Message]], keys: list[list[str]], missing: list[int],
                     settings: GenerationSettings, results: list[Completion | None]) -> None:
        futures = [self._inflight[keys[i][0]] for i in missing]
        try:
            fresh = await self.inner.chat([conversations[i] for i in missing], settings)
            self._store([keys[i] for i in missing], fresh)
        except BaseException as exc:  # backends report failures as completions; this is a bug or a cancel
            for future in futures:
                if not future.done():
                    future.set_result(Completion(error=f"the identical request this one shared failed: {exc!r}"))
            raise
        finally:
            for i in missing:
                self._inflight.pop(keys[i][0], None)
        for i, future, completion in zip(missing, futures, fresh, strict=True):
            results[i] = completion
            future.set_result(completion)

    def _store(self, keys: list[list[str]], completions: list[Completion]) -> None:
        items = []
        for ks, completion in zip(keys, completions, strict=True):
            if not completion.ok or len(completion.texts) != len(ks) or not all(t.strip() for t in completion.texts):
                continue  # failures and empty texts are not kept: a re-run (or --retry-failed) asks again
            for i, key in enumerate(ks):
                entry = {"text": completion.texts[i], "finish_reason": completion.finish_reasons[i]}
                if i == 0:  # the call's usage is kept once, with the first sample
                    entry["usage"] = [completion.usage.prompt_tokens, completion.usage.completion_tokens]
                items.append((key, entry))
        if items:
            self.cache.put_many(items)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _shared(completion: Completion) -> Completion:
    """Another caller's completion, as this caller sees it: nothing paid, the same texts (or the same error)."""
    return Completion(texts=list(completion.texts), finish_reasons=list(completion.finish_reasons),
                      error=completion.error, attempts=0, cached=completion.ok)


def _from_entries(entries: list[dict[str, Any]]) -> Completion:
    return Completion(
        texts=[e["text"] for e in entries],
        finish_reasons=[e["finish_reason"] for e in entries],
        usage=Usage(),  # nothing was paid for this time
        attempts=0,
        cached=True,
    )
