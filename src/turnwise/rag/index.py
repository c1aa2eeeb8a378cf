"""A persisted corpus index for multi-turn RAG: token chunks, MiniLM embeddings, BM25, hybrid fusion.

    index = RagIndex.build(read_corpus("corpus.jsonl"), IndexSettings(kind="hybrid", chunk_tokens=128))
    index.save("runs/index")
    index = RagIndex.load("runs/index")                      # no document is embedded again
    [f.id for f in index.search(["How long is the Nile?"], k=4)[0]]      # ["nile#0", "nile#3", ...]

Built on :mod:`turnwise.retrieval`: documents are cut with ``chunk_text`` (tokens of the built-in regex
tokenizer or of a model's tokenizer), embedded with a ``SentenceTransformerEmbedder`` (the offline
all-MiniLM-L6-v2 by default) and searched with ``DenseIndex`` and ``BM25Index`` (jieba words for Chinese).
A chunk is indexed with its document's title in front, and is known by the id ``{document id}#{n}``.

``hybrid`` fuses the two rankings with reciprocal rank fusion (Cormack et al., SIGIR 2009):
``score = Σ 1 / (rrf_k + rank)`` over the ``candidates`` best chunks of each retriever, ties to the earlier
chunk. BM25 hits that share no term with the query are not hits.

On disk an index is a folder: ``index.json`` (settings, counts, a fingerprint of the documents),
``chunks.jsonl`` (one chunk per line with its document and title) and ``vectors.npy`` (float32, one unit row
per chunk; dense and hybrid only, memory-mapped on load). BM25's statistics are recomputed from the stored
chunks on load (no model involved); embeddings never are. The folder is written aside and moved into place,
so a crash never leaves half an index.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from turnwise.errors import ConfigError, require
from turnwise.rag.corpus import Document
from turnwise.records import atomic_write_text
from turnwise.retrieval import (
    DEFAULT_EMBEDDING_MODEL,
    BM25Index,
    Chunk,
    DenseIndex,
    Embedder,
    Hit,
    SentenceTransformerEmbedder,
    chunk_text,
    get_tokenizer,
)

KINDS = ("dense", "bm25", "hybrid")
FORMAT = "turnwise-rag-index"
VERSION = 1
_EMBED_BATCH = 256


@dataclass(frozen=True)
class IndexSettings:
    """How an index is built and searched; saved with it.

    Attributes:
        kind: ``dense`` (embeddings), ``bm25`` (no torch) or ``hybrid`` (both, fused).
        chunk_tokens: tokens per chunk.
        overlap: tokens shared by neighbouring chunks.
        tokenizer: token counter for chunking: ``regex`` or a tokenizer's hub id or folder.
        embedding_model: sentence-transformers model (dense, hybrid).
        rrf_k: reciprocal rank fusion's constant (hybrid).
        candidates: chunks each retriever contributes to the fusion (hybrid).
    """

    kind: str = "hybrid"
    chunk_tokens: int = 128
    overlap: int = 0
    tokenizer: str = "regex"
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    rrf_k: int = 60
    candidates: int = 50

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown index kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.chunk_tokens < 1 or not 0 <= self.overlap < self.chunk_tokens:
            raise ConfigError(f"need chunk_tokens >= 1 and 0 <= overlap < chunk_tokens, got "
                              f"{self.chunk_tokens} and {self.overlap}")
        if self.rrf_k < 0 or self.candidates < 1:
            raise ConfigError("rrf_k must be >= 0 and candidates >= 1")

    @property
    def dense(self) -> bool:
        return self.kind in ("dense", "hybrid")

    @property
    def sparse(self) -> bool:
        return self.kind in ("bm25", "hybrid")


@dataclass(frozen=True)
class Found:
    """A retrieved chunk.

    Attributes:
        id: ``{document id}#{n}``.
        doc: the document's id.
        title: the document's title.
        text: the chunk's text (a slice of the document).
        score: the fused score (hybrid) or the retriever's own (cosine, BM25).
        ranks: 1-based rank in each retriever that found it.
    """

    id: str
    doc: str
    title: str | None
    text: str
    score: float
    ranks: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "score": round(self.score, 6), "ranks": self.ranks}

    def passage(self) -> dict[str, Any]:
        """What the answer prompt shows."""
        return {"id": self.id, "title": self.title, "text": self.text}


@dataclass(frozen=True)
class _Entry:
    doc: str
    title: str | None
    chunk: Chunk  # its ``index`` is the position within its document

    @property
    def id(self) -> str:
        return f"{self.doc}#{self.chunk.index}"

    @property
    def searchable(self) -> str:
        """What the retrievers index: the title, then the chunk."""
        return f"{self.title}\n{self.chunk.text}" if self.title else self.chunk.text


def _fingerprint(documents: Sequence[Document]) -> str:
    digest = hashlib.sha256()
    for doc in documents:
        digest.update(json.dumps([doc.id, doc.title, doc.text], ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()


class RagIndex:
    """Chunks of a corpus, searchable by embeddings, BM25 or both; see the module's docstring.

    Build one with :meth:`build` or :meth:`load`.
    """

    def __init__(self, entries: Sequence[_Entry], settings: IndexSettings, *, vectors: Any = None,
                 embedder: Embedder | None = None, info: dict[str, Any] | None = None):
        self.entries = list(entries)
        self.settings = settings
        self.info = dict(info or {})
        self._embedder = embedder
        # The retrievers see each chunk under its corpus-wide position, with the title in front.
        positional = [replace(e.chunk, index=i, text=e.searchable) for i, e in enumerate(self.entries)]
        self._bm25 = BM25Index(positional) if settings.sparse else None
        self._dense = None
        if settings.dense:
            if vectors is None:
                raise ConfigError("a dense or hybrid index needs its vectors")
            self._dense = DenseIndex(positional, vectors, {"embedding_model": settings.embedding_model})

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = SentenceTransformerEmbedder(self.settings.embedding_model)
        return self._embedder

    def __len__(self) -> int:
        return len(self.entries)

    @classmethod
    def build(cls, documents: Sequence[Document], settings: IndexSettings | None = None, *,
              embedder: Embedder | None = None, on_progress: Callable[[int, int], None] | None = None) -> RagIndex:
        """Chunk (and embed) ``documents``; ``on_progress(done, total)`` follows the embedding."""
        settings = settings or IndexSettings()
        tokenizer = get_tokenizer(settings.tokenizer)
        entries = [_Entry(doc.id, doc.title, chunk) for doc in documents
                   for chunk in chunk_text(doc.text, settings.chunk_tokens, tokenizer, overlap=settings.overlap)]
        vectors = None
        if settings.dense:
            embedder = embedder or SentenceTransformerEmbedder(settings.embedding_model)
            vectors = _embed_all(embedder, [e.searchable for e in entries], on_progress)
        info = {"documents": len(documents), "fingerprint": _fingerprint(documents),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        return cls(entries, settings, vectors=vectors, embedder=embedder, info=info)

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Write the index to ``folder``; an existing folder is replaced only with ``overwrite``."""
        folder = Path(folder)
        if folder.exists() and not overwrite:
            raise ConfigError(f"{folder} exists; pass overwrite (--overwrite) to replace it")
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
        os.chmod(staging, 0o755)  # mkdtemp's 0700 would make the index private to its builder
        try:
            self._write(staging)
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(staging, folder)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
        return folder

    def _write(self, folder: Path) -> None:
        lines = "".join(json.dumps({"id": e.id, "doc": e.doc, "title": e.title, **e.chunk.to_dict()},
                                   ensure_ascii=False) + "\n" for e in self.entries)
        atomic_write_text(folder / "chunks.jsonl", lines)
        dimension = 0
        if self._dense is not None:
            np = require("numpy", "rag")
            vectors = np.asarray(self._dense.vectors, dtype=np.float32)
            np.save(folder / "vectors.npy", vectors)
            dimension = int(vectors.shape[1]) if vectors.ndim == 2 else 0
        meta = {"format": FORMAT, "version": VERSION, "settings": asdict(self.settings), **self.info,
                "chunks": len(self.entries), "dimension": dimension}
        atomic_write_text(folder / "index.json", json.dumps(meta, indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, folder: str | Path, *, embedder: Embedder | None = None) -> RagIndex:
        """Read an index written by :meth:`save`; queries are embedded with the model it was built with.

        Raises:
            ConfigError: the folder holds no index, its parts disagree, or ``embedder`` is another model.
        """
        folder = Path(folder)
        try:
            meta = json.loads((folder / "index.json").read_text(encoding="utf-8"))
            rows = [json.loads(line) for line in (folder / "chunks.jsonl").read_text(encoding="utf-8").splitlines()
                    if line.strip()]
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{folder}: not a readable turnwise RAG index ({exc})") from exc
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise ConfigError(f"{folder}: not a {FORMAT} version {VERSION} folder")
        settings = IndexSettings(**meta["settings"])
        if embedder is not None and settings.dense and embedder.name != settings.embedding_model:
            raise ConfigError(f"{folder} was embedded with {settings.embedding_model!r}; queries cannot be "
                              f"embedded with {embedder.name!r}")
        try:
            entries = [_Entry(r["doc"], r["title"], Chunk.from_dict({k: v for k, v in r.items()
                                                                     if k not in ("id", "doc", "title")}))
                       for r in rows]
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{folder}/chunks.jsonl: not an index's chunk list ({exc})") from exc
        vectors = None
        if settings.dense:
            np = require("numpy", "rag")
            vectors = np.load(folder / "vectors.npy", mmap_mode="r")
            if vectors.shape[0] != len(entries):
                raise ConfigError(f"{folder}: {len(entries)} chunks but {vectors.shape[0]} vectors")
        info = {k: v for k, v in meta.items() if k not in ("format", "version", "settings", "chunks", "dimension")}
        return cls(entries, settings, vectors=vectors, embedder=embedder, info=info)

    def search(self, queries: Sequence[str], k: int = 4) -> list[list[Found]]:
        """The ``k`` best chunks per query, best first."""
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}")
        depth = max(k, self.settings.candidates) if self.settings.kind == "hybrid" else k
        rankings: dict[str, list[list[Hit]]] = {}
        if self._bm25 is not None:
            rankings["bm25"] = [[h for h in hits if h.score > 0] for hits in self._bm25.search(queries, depth)]
        if self._dense is not None:
            rankings["dense"] = self._dense.search_vectors(self.embedder.embed(list(queries)), depth)
        return [self._fuse({name: hits[q] for name, hits in rankings.items()}, k) for q in range(len(queries))]

    def _fuse(self, rankings: dict[str, list[Hit]], k: int) -> list[Found]:
        scores: dict[int, float] = {}
        ranks: dict[int, dict[str, int]] = {}
        fused = len(rankings) > 1
        for name, hits in rankings.items():
            for rank, hit in enumerate(hits, start=1):
                position = hit.chunk.index
                ranks.setdefault(position, {})[name] = rank
                gain = 1.0 / (self.settings.rrf_k + rank) if fused else float(hit.score)
                scores[position] = scores.get(position, 0.0) + gain
        best = sorted(scores, key=lambda p: (-scores[p], p))[:k]
        return [self._found(p, scores[p], ranks[p]) for p in best]

    def _found(self, position: int, score: float, ranks: dict[str, int]) -> Found:
        entry = self.entries[position]
        return Found(entry.id, entry.doc, entry.title, entry.chunk.text, score, ranks)


def _embed_all(embedder: Embedder, texts: list[str], on_progress: Callable[[int, int], None] | None) -> Any:
    np = require("numpy", "rag")
    parts = []
    for start in range(0, len(texts), _EMBED_BATCH):
        parts.append(embedder.embed(texts[start : start + _EMBED_BATCH]))
        if on_progress is not None:
            on_progress(min(start + _EMBED_BATCH, len(texts)), len(texts))
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(parts).astype(np.float32, copy=False)
