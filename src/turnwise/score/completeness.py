"""LongReward completeness: does the answer cover the points of the context that the question needs?

1. Key points, once per (context, question) and shared by every candidate answer: the context is cut
   into large chunks (4,096 tokens) and the judge lists, per chunk and in parallel, the information
   relevant to the question, or answers "No relevant information".
2. Per answer: the judge sees the question, the points of every part (labelled by their position,
   "25%–50%") and the answer, and rates its coverage 0–10.

If a chunk's points cannot be extracted, every answer's completeness fails with that chunk's raw replies:
rating coverage against a partial list of points would reward answers for skipping what was lost.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from turnwise.judge.core import Judge
from turnwise.judge.parse import ParseError
from turnwise.judge.replies import Reply, json_object, words
from turnwise.retrieval.chunking import Tokenizer, chunk_text
from turnwise.score.dimensions import RATING, from_judgement
from turnwise.score.types import FAILED, NA, DimensionScore, ScoreCost, ScoreInput

NAME = "completeness"
NO_INFO = "No relevant information"


def parse_points(text: str) -> str:
    """The relevant information of a chunk, or :data:`NO_INFO` when the reply starts with that sentinel.

    Raises:
        ParseError: an empty reply.
    """
    bare = text.strip().strip("\"'“”「」`。.").strip()
    if bare.lower().startswith(NO_INFO.lower()):
        return NO_INFO
    if not bare:
        raise ParseError("empty reply")
    return text.strip()


def _read_points(value: dict[str, Any]) -> str:
    if not isinstance(value.get("relevant"), bool) or not isinstance(value.get("information"), str):
        raise ParseError("the JSON reply has no boolean 'relevant' and string 'information'")
    if not value["relevant"]:
        return NO_INFO
    return parse_points(value["information"])


POINTS = Reply(parse_points, json_object({"information": words(400), "relevant": {"type": "boolean"}}),
               _read_points, '{"information": "...", "relevant": true | false}')


@dataclass
class KeyPoints:
    """What each part of a context says about a question.

    Attributes:
        sections: ``{"span": "0%–25%", "info": ...}`` per chunk, in order.
        reason: why extraction failed, or None.
        failures: the failed chunks' spans, reasons and raw replies.
        cost: the judge calls made (paid once per context and question).
    """

    sections: list[dict[str, str]] = field(default_factory=list)
    reason: str | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)
    cost: ScoreCost = field(default_factory=ScoreCost)


def _span(start: int, end: int, total: int) -> str:
    return f"{round(start / total * 100)}%–{round(end / total * 100)}%"


async def extract_points(judge: Judge, lang: str, item: ScoreInput, chunk_tokens: int = 4096,
                         tokenizer: Tokenizer | None = None) -> KeyPoints:
    """Step 1: the question-relevant points of each large chunk of ``item.context``."""
    chunks = chunk_text(item.context, chunk_tokens, tokenizer)
    verdicts = await asyncio.gather(*(
        judge.ask("score/extract", POINTS, lang, query=item.query, chunk=chunk.text.strip())
        for chunk in chunks
    ))
    points = KeyPoints()
    for chunk, verdict in zip(chunks, verdicts, strict=True):
        points.cost.judge += verdict.cost
        span = _span(chunk.start, chunk.end, chunk.total_tokens)
        if verdict.ok:
            points.sections.append({"span": span, "info": str(verdict.value)})
        else:
            points.failures.append({"span": span, **verdict.failure()})
    if points.failures:
        points.reason = (f"key points of {len(points.failures)} of {len(chunks)} context chunks could not be "
                         f"extracted: {points.failures[0]['reason']}")
    return points


async def completeness(judge: Judge, lang: str, item: ScoreInput, response: str,
                       points: KeyPoints | None) -> DimensionScore:
    """Step 2: rate one response's coverage of the key points."""
    if not item.context.strip() or points is None:
        return DimensionScore(NAME, NA, reason="no context to be complete about")
    if points.reason:
        return DimensionScore(NAME, FAILED, reason=points.reason, details={"key_points": points.failures})
    verdict = await judge.ask("score/completeness", RATING, lang, query=item.query,
                              sections=points.sections, response=response)
    return from_judgement(NAME, verdict)
