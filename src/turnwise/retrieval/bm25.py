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
        self._tf = [Counter(terms(c.text)) for c in self.chunks]
        self._len = [sum(tf.values()) for tf in self._tf]
        self._avg = (sum(self._len) / len(self._len)) if self._len else 0.0
        df: Counter[str] = Counter()
        for tf in self._tf:
            df.update(tf.keys())
        n = len(self.chunks)
        self._idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}

    def scores(self, query: str) -> list[float]:
        """The BM25 score of every chunk for ``query``."""
        q = [t for t in terms(query) if t in self._idf]
        out = []
        for tf, length in zip(self._tf, self._len, strict=True):
            norm = self.k1 * (1 - self.b + self.b * length / self._avg) if self._avg else self.k1
            out.append(sum(self._idf[t] * tf[t] * (self.k1 + 1) / (tf[t] + norm) for t in q if t in tf))
        return out

    def search(self, queries: Sequence[str], k: int) -> list[list[Hit]]:
        """The ``k`` best chunks per query, best first (ties: earlier chunk first)."""
        results = []
        for query in queries:
            scores = self.scores(query)
            order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:k]
            results.append([Hit(self.chunks[i], scores[i]) for i in order])
        return results
