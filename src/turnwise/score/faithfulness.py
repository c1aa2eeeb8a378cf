"""LongReward faithfulness: is each factual statement of an answer supported by the context?

1. The judge lists the answer's self-contained factual statements (``<statement>…</statement>``).
2. The context is cut into 128-token chunks (once per context: the retriever caches its index) and the
   top 5 chunks per statement are retrieved, then put back in document order.
3. The judge rates each statement, in parallel: fully (1), partially (0.5) or not (0) supported.
4. Faithfulness = mean support × 10. An answer with no factual statement is ``n/a`` (recorded with the
   judge's reply), and one statement without a valid verdict fails the dimension, its raw replies kept.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache
from typing import Any

from turnwise.judge.core import Judge, Judgement
from turnwise.judge.replies import Reply, label_reply, list_reply
from turnwise.retrieval.retriever import Retriever
from turnwise.score.dimensions import from_judgement
from turnwise.score.types import FAILED, NA, OK, DimensionScore, ScoreCost, ScoreInput

NAME = "faithfulness"
NO_STATEMENTS = "No factual statements"
SUPPORT = {
    "Fully supported": 1.0,
    "Partially supported": 0.5,
    "No support": 0.0,
    "Not supported": 0.0,
    "完全支持": 1.0,
    "部分支持": 0.5,
    "不支持": 0.0,
}

@lru_cache(maxsize=8)
def statements_reply(max_tokens: int | None = None) -> Reply[list[str]]:
    """The statements' reply; with ``max_tokens``, its JSON list sized to fit a reply that long."""
    return list_reply("statement", "statements", none_marker=NO_STATEMENTS, max_tokens=max_tokens)


parse_statements = statements_reply()
parse_support = label_reply(SUPPORT)


async def faithfulness(judge: Judge, retriever: Retriever, lang: str, item: ScoreInput, response: str,
                       top_k: int = 5) -> DimensionScore:
    """Score one response's faithfulness to ``item.context``; see the module docstring."""
    if not item.context.strip():
        return DimensionScore(NAME, NA, reason="no context to be faithful to")
    found = await judge.ask("score/statements", statements_reply(judge.policy.max_tokens), lang, query=item.query,
                            response=response)
    if not found.ok:
        return from_judgement(NAME, found, details={"step": "statements"})
    statements: list[str] = found.value or []
    cost = ScoreCost(found.cost)
    if not statements:
        return DimensionScore(NAME, NA, reason="no factual statements", details={"statements": [],
                              "analysis": found.text}, cost=cost)
    search = await asyncio.to_thread(retriever.search, item.context, statements, top_k)
    cost.embedded += search.embedded
    verdicts = await asyncio.gather(*(
        judge.ask("score/faithfulness", parse_support, lang, query=item.query, statement=statement,
                  passages=[hit.chunk.text.strip() for hit in hits])
        for statement, hits in zip(statements, search.hits, strict=True)
    ))
    details = [_statement(s, hits, v) for s, hits, v in zip(statements, search.hits, verdicts, strict=True)]
    for verdict in verdicts:
        cost.judge += verdict.cost
    failed = [v for v in verdicts if not v.ok]
    if failed:
        reason = f"{len(failed)} of {len(statements)} statements got no valid verdict: {failed[0].reason}"
        return DimensionScore(NAME, FAILED, reason=reason, details={"statements": details}, cost=cost)
    support = [v.value[1] for v in verdicts if v.value is not None]
    return DimensionScore(NAME, OK, sum(support) / len(support) * 10, details={"statements": details}, cost=cost)


def _statement(text: str, hits: list[Any], verdict: Judgement[tuple[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {"text": text, "chunks": [hit.chunk.index for hit in hits]}
    if verdict.ok and verdict.value is not None:
        out.update(verdict=verdict.value[0], support=verdict.value[1], analysis=verdict.text)
    else:
        out.update(verdict=None, support=None, **verdict.failure())
    return out
