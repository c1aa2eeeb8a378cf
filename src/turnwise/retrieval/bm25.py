"""Okapi BM25 over chunks: the retriever that needs no torch (Chinese is segmented with jieba).

    index = BM25Index(chunks)
    hits = index.search(["which lake is deepest?"], k=5)

Terms are lower-cased words; a text with Chinese characters is segmented into words with jieba (the
``zh`` extra), so that 贝加尔湖 matches 贝加尔湖 and not every 湖. Scores are the classic
``idf · tf·(k1+1) / (tf + k1·(1 − b + b·len/avglen))`` with ``idf = ln(1 + (N − df + 0.5)/(df + 0.5))``.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections import Counter
from collections.abc import Sequence

from turnwise.errors import require
from turnwise.retrieval.chunking import Chunk
from turnwise.retrieval.types import Hit

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"\w+")


@functools.lru_cache(maxsize=1)
def _jieba():
    jieba = require("jieba", "zh")
    jieba.setLogLevel(logging.WARNING)  # it logs its dictionary loading at INFO on its own handler
    return jieba


def terms(text: str) -> list[str]:
    """BM25 terms: lower-cased words; Chinese segmented by jieba; punctuation and spaces dropped."""
    text = text.lower()
    if _CJK.search(text):
        return [w for w in _jieba().lcut(text) if _WORD.fullmatch(w)]
    return _WORD.findall(text)


class BM25Index:
    """BM25 over a fixed list of chunks.

    Args:
        chunks: what is searched.
        k1: term-frequency saturation.
        b: length normalisation.
    """

    kind = "bm25"

    def __init__(self, chunks: Sequence[Chunk], *, k1: float = 1.5, b: float = 0.75):
        self.chunks = list(chunks)
        self.k1, self.b = k1, b
        counts = [Counter(terms(c.text)) for c in self.chunks]
        lengths = [sum(tf.values()) for tf in counts]
        avg = (sum(lengths) / len(lengths)) if lengths else 0.0
        self._norm = [k1 * (1 - b + b * n / avg) if avg else k1 for n in lengths]
        # An inverted index: a query touches only the chunks that hold one of its terms.
        self._postings: dict[str, list[tuple[int, int]]] = {}
        for i, tf in enumerate(counts):
            for term, count in tf.items():
                self._postings.setdefault(term, []).append((i, count))
        n = len(self.chunks)
        self._idf = {t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in self._postings.items()}

    def _sparse_scores(self, query: str) -> dict[int, float]:
        scores: dict[int, float] = {}
        for term in terms(query):
            idf = self._idf.get(term)
            if idf is None:
                continue
            for i, tf in self._postings[term]:
                scores[i] = scores.get(i, 0.0) + idf * tf * (self.k1 + 1) / (tf + self._norm[i])
        return scores

    def scores(self, query: str) -> list[float]:
        """The BM25 score of every chunk for ``query``."""
        sparse = self._sparse_scores(query)
        return [sparse.get(i, 0.0) for i in range(len(self.chunks))]

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        """The ``k`` best chunks per query that share a term with it, best first (ties: earlier chunk first)."""
        results = []
        for query in queries:
            scores = self._sparse_scores(query)
            order = sorted(scores, key=lambda i: (-scores[i], i))[:k]
            results.append([Hit(self.chunks[i], scores[i]) for i in order])
        return results
