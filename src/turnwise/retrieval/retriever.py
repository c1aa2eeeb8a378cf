"""Find the chunks of a context that bear on each query, computing each context's index only once.

    retriever = Retriever()                                   # dense, all-MiniLM-L6-v2, 128-token chunks
    retriever = Retriever("bm25")                             # no torch: BM25, jieba for Chinese
    found = retriever.search(context, statements, k=5)        # found.hits[i]: chunks for statements[i]
    found.embedded                                            # texts the model embedded for this call

Indexes are kept per context (keyed by a hash of its text), so the ten candidate answers to one prompt
share one index: the context is chunked and embedded once, not once per answer. Embeddings are also
memoised per text, so two contexts that share a prefix (the history of successive turns of one dialogue)
share the embeddings of the chunks they have in common, and a statement made by two answers is
embedded once. Thread-safe: concurrent callers asking for the same new context wait for one build.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from turnwise.errors import ConfigError, require
from turnwise.retrieval.bm25 import BM25Index
from turnwise.retrieval.chunking import Chunk, Tokenizer, chunk_text, get_tokenizer
from turnwise.retrieval.dense import DenseIndex
from turnwise.retrieval.embed import DEFAULT_EMBEDDING_MODEL, Embedder, SentenceTransformerEmbedder
from turnwise.retrieval.types import Hit, by_position

KINDS = ("dense", "bm25")
Index = DenseIndex | BM25Index


@dataclass
class Search:
    """The answer to :meth:`Retriever.search`.

    Attributes:
        hits: per query, the chunks found (in document order unless asked otherwise).
        embedded: texts the embedding model computed for this call (0 for BM25, or when all were memoised).
    """

    hits: list[list[Hit]]
    embedded: int


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Retriever:
    """Chunk, index and search contexts, with an index cache per context and an embedding memo per text.

    Args:
        kind: ``dense`` (embeddings) or ``bm25`` (no torch).
        embedder: the embedder for ``dense``; default the offline all-MiniLM-L6-v2.
        chunk_tokens: tokens per chunk (LongReward: 128, no overlap).
        tokenizer: counts the tokens; default :class:`~turnwise.retrieval.chunking.RegexTokenizer`.
        max_contexts: indexes kept (least recently used ones are dropped first).
        max_memo: embeddings kept in the per-text memo.
    """

    def __init__(self, kind: str = "dense", *, embedder: Embedder | None = None, chunk_tokens: int = 128,
                 tokenizer: Tokenizer | None = None, max_contexts: int = 256, max_memo: int = 50_000):
        if kind not in KINDS:
            raise ConfigError(f"unknown retriever {kind!r}; choose one of {', '.join(KINDS)}")
        if chunk_tokens < 1:
            raise ConfigError(f"chunk_tokens must be at least 1, got {chunk_tokens}")
        self.kind = kind
        self.embedder = embedder if embedder is not None or kind == "bm25" else SentenceTransformerEmbedder()
        self.chunk_tokens = chunk_tokens
        self.tokenizer = tokenizer or get_tokenizer()
        self.max_contexts, self.max_memo = max_contexts, max_memo
        self._indexes: OrderedDict[str, Index] = OrderedDict()
        self._memo: OrderedDict[str, Any] = OrderedDict()
        self._building: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        """The settings, for manifests and persisted indexes."""
        info: dict[str, Any] = {"kind": self.kind, "chunk_tokens": self.chunk_tokens, "tokenizer": self.tokenizer.name}
        if self.embedder is not None:
            info["embedding_model"] = self.embedder.name
        return info

    def chunks(self, text: str) -> list[Chunk]:
        return chunk_text(text, self.chunk_tokens, self.tokenizer)

    def index(self, text: str) -> tuple[Index, int]:
        """The index of ``text`` and the texts embedded to build it now (0 when it was cached)."""
        key = _digest(text)
        with self._lock:
            if key in self._indexes:
                self._indexes.move_to_end(key)
                return self._indexes[key], 0
            building = self._building.setdefault(key, threading.Lock())
        with building:
            with self._lock:
                if key in self._indexes:
                    return self._indexes[key], 0
            index, embedded = self._build(text)
            with self._lock:
                self._indexes[key] = index
                while len(self._indexes) > self.max_contexts:
                    self._indexes.popitem(last=False)
                self._building.pop(key, None)
        return index, embedded

    def _build(self, text: str) -> tuple[Index, int]:
        chunks = self.chunks(text)
        if self.kind == "bm25":
            return BM25Index(chunks), 0
        vectors, embedded = self.embed([c.text for c in chunks])
        return DenseIndex(chunks, vectors, self.describe()), embedded

    def embed(self, texts: Sequence[str]) -> tuple[Any, int]:
        """Unit vectors for ``texts`` through the memo; returns them and how many the model computed."""
        np = require("numpy", "rag")
        if self.embedder is None:
            raise ConfigError("a bm25 retriever has no embedder")
        keys = [_digest(t) for t in texts]
        with self._lock:
            found = {k: self._memo[k] for k in keys if k in self._memo}
        todo = list(dict.fromkeys(k for k in keys if k not in found))  # each distinct text once
        if todo:
            first = {k: t for k, t in zip(keys, texts, strict=True)}
            fresh = self.embedder.embed([first[k] for k in todo])
            found.update(zip(todo, fresh, strict=True))
            with self._lock:
                for k in todo:
                    self._memo[k] = found[k]
                while len(self._memo) > self.max_memo:
                    self._memo.popitem(last=False)
        dim = len(next(iter(found.values()))) if found else 0
        matrix = np.stack([found[k] for k in keys]) if keys else np.zeros((0, dim), dtype=np.float32)
        return matrix, len(todo)

    def search(self, text: str, queries: Sequence[str], k: int = 5, *, in_order: bool = True) -> Search:
        """The top ``k`` chunks of ``text`` for each query.

        Args:
            text: the context searched (its index is built on first use, then reused).
            queries: what to look for, e.g. an answer's factual statements.
            k: chunks per query (all of them when the text has fewer).
            in_order: return each query's chunks in document order rather than best first.
        """
        index, embedded = self.index(text)
        if isinstance(index, BM25Index):
            hits = index.search(queries, k)
        else:
            vectors, computed = self.embed(queries)
            embedded += computed
            hits = index.search_vectors(vectors, k)
        return Search([by_position(h) for h in hits] if in_order else hits, embedded)


def make_retriever(kind: str = "dense", *, embedding_model: str = DEFAULT_EMBEDDING_MODEL, chunk_tokens: int = 128,
                   tokenizer: str | None = None, device: str | None = None) -> Retriever:
    """A retriever from plain settings (what the CLI and recipes give)."""
    embedder = SentenceTransformerEmbedder(embedding_model, device=device) if kind == "dense" else None
    return Retriever(kind, embedder=embedder, chunk_tokens=chunk_tokens, tokenizer=get_tokenizer(tokenizer))
