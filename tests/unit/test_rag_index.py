"""The persisted RAG index: chunk ids, BM25 (no torch), hybrid fusion pinned by hand, reload without re-embedding.

A hashing bag-of-words embedder stands in for MiniLM (tests/integration/test_rag_minilm.py uses the real one).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from turnwise.errors import ConfigError
from turnwise.rag.corpus import Document, read_corpus
from turnwise.rag.index import IndexSettings, RagIndex

np = pytest.importorskip("numpy")

DOCS = [
    Document("nile", "The Nile is about 6,650 km long. It flows north through eleven countries.", "Nile"),
    Document("amazon", "The Amazon carries more water than any other river.", "Amazon River"),
    Document("lyon", "Lyon had about 522,000 inhabitants in 2020.", "Lyon"),
]


class HashingEmbedder:
    """Unit vectors of hashed lower-case words: similar wording, similar vectors."""

    name = "hashing-64"

    def __init__(self) -> None:
        self.computed = 0

    def embed(self, texts):
        self.computed += len(texts)
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


def test_bm25_index_needs_no_embedder(tmp_path: Path) -> None:
    index = RagIndex.build(DOCS, IndexSettings(kind="bm25", chunk_tokens=8))
    hits = index.search(["how long is the Nile"], k=2)[0]
    assert hits[0].id == "nile#0" and hits[0].doc == "nile" and hits[0].title == "Nile"
    assert hits[0].ranks == {"bm25": 1}
    assert index.search(["zzz unknown words"], k=3) == [[]]  # no shared term, no hit
    index.save(tmp_path / "idx")
    assert not (tmp_path / "idx" / "vectors.npy").exists()
    again = RagIndex.load(tmp_path / "idx")
    assert [f.id for f in again.search(["how long is the Nile"], k=2)[0]] == [f.id for f in hits]


def test_chunks_are_token_slices_with_document_ids() -> None:
    index = RagIndex.build(DOCS[:1], IndexSettings(kind="bm25", chunk_tokens=6))
    ids = [e.id for e in index.entries]
    assert ids == [f"nile#{i}" for i in range(len(ids))] and len(ids) > 1
    assert "".join(e.chunk.text for e in index.entries) == DOCS[0].text


def test_hybrid_reload_embeds_only_the_queries(tmp_path: Path) -> None:
    embedder = HashingEmbedder()
    built = RagIndex.build(DOCS, IndexSettings(kind="hybrid", chunk_tokens=64, embedding_model="hashing-64"),
                           embedder=embedder)
    assert embedder.computed == 3
    built.save(tmp_path / "idx")
    meta = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert meta["chunks"] == 3 and meta["dimension"] == 64 and meta["settings"]["kind"] == "hybrid"
    fresh = HashingEmbedder()
    loaded = RagIndex.load(tmp_path / "idx", embedder=fresh)
    found = loaded.search(["How long is the Nile?", "inhabitants of Lyon in 2020"], k=2)
    assert fresh.computed == 2  # the two queries; no chunk was embedded again
    assert found[0][0].id == "nile#0" and found[1][0].id == "lyon#0"
    assert found[0] == built.search(["How long is the Nile?"], k=2)[0]


def test_reciprocal_rank_fusion_by_hand() -> None:
    index = RagIndex.build(DOCS, IndexSettings(kind="hybrid", rrf_k=60, embedding_model="hashing-64"),
                           embedder=HashingEmbedder())
    [hits] = index.search(["How long is the Nile?"], k=3)
    top = hits[0]
    # the Nile chunk is first in both rankings: 1/(60+1) + 1/(60+1)
    assert top.ranks == {"bm25": 1, "dense": 1} and top.score == pytest.approx(2 / 61)
    for hit in hits[1:]:
        assert hit.score == pytest.approx(sum(1 / (60 + r) for r in hit.ranks.values()))


def test_load_refuses_another_embedding_model(tmp_path: Path) -> None:
    RagIndex.build(DOCS, IndexSettings(kind="dense", embedding_model="hashing-64"),
                   embedder=HashingEmbedder()).save(tmp_path / "idx")

    class Other(HashingEmbedder):
        name = "other"

    with pytest.raises(ConfigError, match="was embedded with 'hashing-64'"):
        RagIndex.load(tmp_path / "idx", embedder=Other())


def test_save_never_clobbers_without_overwrite(tmp_path: Path) -> None:
    index = RagIndex.build(DOCS, IndexSettings(kind="bm25"))
    index.save(tmp_path / "idx")
    with pytest.raises(ConfigError, match="exists"):
        index.save(tmp_path / "idx")
    RagIndex.build(DOCS[:1], IndexSettings(kind="bm25")).save(tmp_path / "idx", overwrite=True)
    assert len(RagIndex.load(tmp_path / "idx")) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]  # no staging folder left behind


def test_load_rejects_other_folders(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a readable"):
        RagIndex.load(tmp_path)
    (tmp_path / "index.json").write_text('{"format": "something-else"}')
    (tmp_path / "chunks.jsonl").write_text("")
    with pytest.raises(ConfigError, match="not a turnwise-rag-index"):
        RagIndex.load(tmp_path)


def test_bad_settings() -> None:
    for bad in ({"kind": "splade"}, {"chunk_tokens": 0}, {"chunk_tokens": 8, "overlap": 8}, {"candidates": 0}):
        with pytest.raises(ConfigError):
            IndexSettings(**bad)


def test_chinese_bm25() -> None:
    pytest.importorskip("jieba")
    docs = [Document("a", "贝加尔湖是世界上最深的湖泊。"), Document("b", "长城是中国古代的军事防御工程。")]
    [hits] = RagIndex.build(docs, IndexSettings(kind="bm25")).search(["长城有多长"], k=2)
    assert [h.id for h in hits] == ["b#0"]


def test_corpus_readers(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "b.md").write_text("Bee text", encoding="utf-8")
    (tmp_path / "docs" / "a.txt").write_text("A text", encoding="utf-8")
    assert [(d.id, d.title) for d in read_corpus(tmp_path / "docs")] == [("a.txt", "a"), ("b.md", "b")]
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text('{"id": "x", "text": "hello", "title": "T"}\n{"contents": "no id"}\n', encoding="utf-8")
    assert read_corpus(jsonl) == [Document("x", "hello", "T"), Document("c-2", "no id")]
    jsonl.write_text('{"id": "x", "text": "a"}\n{"id": "x", "text": "b"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="appears twice"):
        read_corpus(jsonl)


def test_canard_corpus(shared_data: Path) -> None:
    docs = read_corpus(shared_data / "context" / "canard_dev.json", "canard")
    assert len(docs) == 490
    zappa = next(d for d in docs if d.id == "C_2d211835213b45588ad5ca868ce7fabd_0")
    assert zappa.title == "Frank Zappa — Disbandment" and zappa.text.startswith("Zappa and the Mothers of Invention")
    assert all("I don't know." not in d.text.split("\n") for d in docs)
