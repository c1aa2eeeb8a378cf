"""What a search returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from turnwise.retrieval.chunking import Chunk


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk and its similarity to the query (cosine for embeddings, BM25 otherwise)."""

    chunk: Chunk
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.chunk.index, "score": round(float(self.score), 6)}


def by_position(hits: list[Hit]) -> list[Hit]:
    """Hits in document order (LongReward shows the judge its evidence that way)."""
    return sorted(hits, key=lambda hit: hit.chunk.index)
