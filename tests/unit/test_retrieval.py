"""Chunking, BM25, the dense index and the retriever's caches, with a counting fake embedder (no torch)."""

from __future__ import annotations

import hashlib
import math
import threading
from pathlib import Path

import pytest

from turnwise.errors import ConfigError
from turnwise.retrieval import (
    BM25Index,
    DenseIndex,
    RegexTokenizer,
    Retriever,
    chunk_text,
    count_tokens,
    get_tokenizer,
)
from turnwise.retrieval.bm25 import terms

np = pytest.importorskip("numpy")


class BagOfWords:
    """A fake embedder: hashed bag of words, unit length; counts every text it embeds."""

    name = "bag-of-words"

    def __init__(self, dim: int = 64):
        self.dim = dim
        self.computed = 0
        self.calls: list[list[str]] = []
        self._lock = threading.Lock()

    def embed(self, texts):
        with self._lock:
            self.computed += len(texts)
            self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in terms(text):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


DOC = "".join(f"Paragraph {i}: the {animal} lives in the {place}. " for i, (animal, place) in
              enumerate([("otter", "river"), ("camel", "desert"), ("puffin", "cliffs"), ("mole", "garden")] * 10))


def test_regex_tokens() -> None:
    spans = RegexTokenizer().spans("It's 3.5 km — 湖很深!")
    text = "It's 3.5 km — 湖很深!"
    assert [text[a:b] for a, b in spans] == ["It", "'", "s", "3", ".", "5", "km", "—", "湖", "很", "深", "!"]
    assert count_tokens("one two three") == 3


def test_chunks_tile_the_text_with_exact_sizes() -> None:
    chunks = chunk_text(DOC, 16)
    assert "".join(c.text for c in chunks) == DOC
    total = count_tokens(DOC)
    assert [c.end - c.start for c in chunks] == [16] * (total // 16) + ([total % 16] if total % 16 else [])
    assert all(c.total_tokens == total for c in chunks) and [c.index for c in chunks] == list(range(len(chunks)))
    assert all(DOC[c.char_start:c.char_end] == c.text for c in chunks)
    assert chunk_text("", 128) == [] and len(chunk_text("short text", 128)) == 1


def test_chunk_overlap_and_bad_sizes() -> None:
    chunks = chunk_text("a b c d e f g h", 4, overlap=2)
    assert [(c.start, c.end) for c in chunks] == [(0, 4), (2, 6), (4, 8)]
    for size, overlap in ((0, 0), (4, 4), (4, -1)):
        with pytest.raises(ConfigError):
            chunk_text("a b", size, overlap=overlap)


def test_bm25_ranks_by_terms_and_segments_chinese() -> None:
    chunks = chunk_text("The otter swims in the river. The camel walks in the desert. The mole digs.", 7)
    index = BM25Index(chunks)
    [hits] = index.search(["where does the camel walk"], k=2)
    assert "camel" in hits[0].chunk.text
    pytest.importorskip("jieba")
    assert terms("贝加尔湖是世界上最深的湖泊。") == ["贝加尔湖", "是", "世界", "上", "最深", "的", "湖泊"]
    sentences = ("贝加尔湖是最深的湖泊。", "撒哈拉是最大的沙漠。", "长江是最长的河流。")
    zh = BM25Index([chunk_text(s, 64)[0] for s in sentences])
    [hits] = zh.search(["最大的沙漠在哪里"], k=1)
    assert hits[0].chunk.text == "撒哈拉是最大的沙漠。"


def test_bm25_scores_by_hand_and_skips_chunks_without_a_shared_term() -> None:
    """Two chunks, "a b" and "c"; query "a": N=2, df(a)=1 → idf = ln(1 + 1.5/1.5) = ln 2; avg length 1.5,
    chunk 0 has length 2 → norm = 1.5·(1 − 0.75 + 0.75·2/1.5) = 1.875; score = ln2 · 1·2.5/(1 + 1.875)."""
    index = BM25Index(chunk_text("a b c", 2))
    assert [c.text for c in index.chunks] == ["a b ", "c"]  # chunks are exact slices of the text
    expected = math.log(2) * 2.5 / 2.875
    assert index.scores("a") == pytest.approx([expected, 0.0])
    [hits] = index.search(["a"], k=5)
    assert [h.chunk.text for h in hits] == ["a b "] and hits[0].score == pytest.approx(expected)


def test_retriever_embeds_each_context_once_and_memoises_texts() -> None:
    embedder = BagOfWords()
    retriever = Retriever(embedder=embedder, chunk_tokens=12)
    n_chunks = len(retriever.chunks(DOC))
    first = retriever.search(DOC, ["the camel lives in the desert", "the otter"], k=3)
    assert first.embedded == n_chunks + 2 and embedder.computed == n_chunks + 2
    second = retriever.search(DOC, ["the camel lives in the desert", "a mole in the garden"], k=3)
    assert second.embedded == 1  # the index is reused and the repeated statement memoised
    assert all(len(h) == 3 for h in first.hits)
    assert [h.chunk.index for h in first.hits[0]] == sorted(h.chunk.index for h in first.hits[0])  # document order
    best = retriever.search(DOC, ["the camel lives in the desert"], k=3, in_order=False).hits[0]
    assert best[0].score >= best[1].score >= best[2].score and "camel" in best[0].chunk.text


def test_contexts_sharing_a_prefix_share_chunk_embeddings() -> None:
    embedder = BagOfWords()
    retriever = Retriever(embedder=embedder, chunk_tokens=12)
    turn1 = DOC[:400]
    retriever.index(turn1)
    before = embedder.computed
    _, embedded = retriever.index(turn1 + " And then the puffin flew away over the cliffs.")
    assert embedded == embedder.computed - before <= 2  # only the chunks that changed at the end


def test_concurrent_builds_of_one_context_embed_it_once() -> None:
    embedder = BagOfWords()
    retriever = Retriever(embedder=embedder, chunk_tokens=12)
    threads = [threading.Thread(target=retriever.index, args=(DOC,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert embedder.computed == len(retriever.chunks(DOC))


def test_fewer_chunks_than_k_and_empty_context() -> None:
    retriever = Retriever(embedder=BagOfWords(), chunk_tokens=128)
    assert len(retriever.search("one short chunk", ["x"], k=5).hits[0]) == 1
    assert retriever.search("", ["x"], k=5).hits == [[]]
    assert Retriever("bm25").search("", ["x"], k=5).hits == [[]]


def test_bm25_retriever_needs_no_embedder() -> None:
    retriever = Retriever("bm25", chunk_tokens=12)
    found = retriever.search(DOC, ["camel desert"], k=2)
    assert found.embedded == 0 and "camel" in found.hits[0][0].chunk.text + found.hits[0][1].chunk.text
    assert retriever.describe() == {"kind": "bm25", "chunk_tokens": 12, "tokenizer": "regex"}
    with pytest.raises(ConfigError):
        Retriever("sparse")


def test_dense_index_saves_and_loads(tmp_path: Path) -> None:
    embedder = BagOfWords()
    retriever = Retriever(embedder=embedder, chunk_tokens=12)
    index, _ = retriever.index(DOC)
    index.save(tmp_path / "idx")
    loaded = DenseIndex.load(tmp_path / "idx")
    assert loaded.chunks == index.chunks and np.allclose(loaded.vectors, index.vectors)
    assert loaded.info["chunk_tokens"] == 12 and loaded.info["embedding_model"] == "bag-of-words"
    query = embedder.embed(["the puffin on the cliffs"])
    assert [h.chunk.index for h in loaded.search_vectors(query, 3)[0]] == [
        h.chunk.index for h in index.search_vectors(query, 3)[0]]
    (tmp_path / "idx" / "chunks.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="do not match"):
        DenseIndex.load(tmp_path / "idx")


def test_default_tokenizer_is_regex() -> None:
    assert get_tokenizer().name == "regex" and get_tokenizer("regex").name == "regex"
