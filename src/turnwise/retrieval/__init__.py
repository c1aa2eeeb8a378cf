"""Retrieval shared by AI-feedback scoring and multi-turn RAG: token chunks, embeddings, BM25, cached indexes.

    from turnwise.retrieval import Retriever, chunk_text

    retriever = Retriever()                    # dense: all-MiniLM-L6-v2 offline, 128-token chunks
    found = retriever.search(context, ["the lake is the deepest in the world"], k=5)
    [hit.chunk.text for hit in found.hits[0]]

Heavy pieces (numpy, sentence-transformers, jieba) are imported only when a dense index is built, an
embedding computed or Chinese text segmented.
"""

from turnwise.retrieval.bm25 import BM25Index
from turnwise.retrieval.chunking import (
    Chunk,
    HFTokenizer,
    RegexTokenizer,
    Tokenizer,
    chunk_text,
    count_tokens,
    get_tokenizer,
)
from turnwise.retrieval.dense import DenseIndex
from turnwise.retrieval.embed import DEFAULT_EMBEDDING_MODEL, Embedder, SentenceTransformerEmbedder
from turnwise.retrieval.retriever import KINDS, Retriever, Search, make_retriever
from turnwise.retrieval.types import Hit, by_position

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "KINDS",
    "BM25Index",
    "Chunk",
    "DenseIndex",
    "Embedder",
    "HFTokenizer",
    "Hit",
    "RegexTokenizer",
    "Retriever",
    "Search",
    "SentenceTransformerEmbedder",
    "Tokenizer",
    "by_position",
    "chunk_text",
    "count_tokens",
    "get_tokenizer",
    "make_retriever",
]
