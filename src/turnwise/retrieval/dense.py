"""A dense index: the chunks of one text and their embeddings, searchable and persistable.

    index = DenseIndex(chunks, embedder.embed([c.text for c in chunks]))
    hits = index.search_vectors(embedder.embed(["query"]), k=5)
    index.save("runs/index/doc-1"); DenseIndex.load("runs/index/doc-1")

On disk an index is a folder: ``chunks.jsonl`` (one chunk per line), ``vectors.npy`` (float32, one row
per chunk) and ``index.json`` (kind, embedding model, dimension, and whatever the caller adds, e.g. the
chunk size and tokenizer), so a later run can check it was built the way it wants.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from turnwise.errors import ConfigError, require
from turnwise.records import atomic_write_text
from turnwise.retrieval.chunking import Chunk
from turnwise.retrieval.types import Hit


class DenseIndex:
    """Chunks with one unit-length embedding each; similarity is the dot product (cosine).

    Args:
        chunks: the chunks, in order.
        vectors: a float32 array (len(chunks), dim) of unit-length rows.
        info: what built it (embedding model, chunk size...), saved with it.
    """

    kind = "dense"

    def __init__(self, chunks: Sequence[Chunk], vectors: Any, info: dict[str, Any] | None = None):
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        self.chunks = list(chunks)
        self.vectors = vectors
        self.info = dict(info or {})

    def search_vectors(self, queries: Any, k: int) -> list[list[Hit]]:
        """The ``k`` most similar chunks per query vector, best first (ties: earlier chunk first)."""
        np = require("numpy", "rag")
        if not self.chunks:
            return [[] for _ in range(len(queries))]
        sims = np.asarray(queries, dtype=np.float32) @ self.vectors.T
        k = min(k, len(self.chunks))
        results = []
        for row in sims:
            order = np.lexsort((np.arange(len(row)), -row))[:k]  # stable: equal scores keep document order
            results.append([Hit(self.chunks[i], float(row[i])) for i in order])
        return results

    def save(self, folder: str | Path) -> Path:
        """Write the index to ``folder`` (created); returns the folder."""
        np = require("numpy", "rag")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "vectors.npy", np.asarray(self.vectors, dtype=np.float32))
        lines = "".join(json.dumps(c.to_dict(), ensure_ascii=False) + "\n" for c in self.chunks)
        atomic_write_text(folder / "chunks.jsonl", lines)
        dim = int(self.vectors.shape[1]) if len(self.chunks) else 0
        meta = {**self.info, "kind": self.kind, "chunks": len(self.chunks), "dimension": dim}
        atomic_write_text(folder / "index.json", json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> DenseIndex:
        """Read an index written by :meth:`save`.

        Raises:
            ConfigError: the folder holds no dense index, or its parts disagree.
        """
        np = require("numpy", "rag")
        folder = Path(folder)
        try:
            info = json.loads((folder / "index.json").read_text(encoding="utf-8"))
            chunks = [Chunk.from_dict(json.loads(line)) for line in
                      (folder / "chunks.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
            vectors = np.load(folder / "vectors.npy")
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"{folder}: not a readable dense index ({exc})") from exc
        if info.get("kind") != cls.kind or len(chunks) != len(vectors):
            raise ConfigError(f"{folder}: index.json, chunks.jsonl and vectors.npy do not match")
        return cls(chunks, vectors, {k: v for k, v in info.items() if k not in ("kind", "chunks", "dimension")})
