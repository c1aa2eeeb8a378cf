"""LongReward's judge-only dimensions, helpfulness and logicality, and helpers every dimension shares.

Both show the judge the question and the answer (and, in a dialogue, the last few turns before the
question), never the long context: helpfulness asks whether the answer meets the user's need,
logicality whether it is consistent with itself, judged with no outside knowledge.
"""

from __future__ import annotations

from typing import Any

from turnwise.data.schema import Message
from turnwise.judge.core import Judge, Judgement
from turnwise.judge.replies import rating_reply
from turnwise.score.types import FAILED, OK, DimensionScore, ScoreCost, ScoreInput

RATING = rating_reply(0, 10)  # [[0–10]], or {"analysis", "rating"} when replies are structured

RATED = ("helpfulness", "logicality")


def from_judgement(name: str, verdict: Judgement[Any], score: float | None = None,
                   details: dict[str, Any] | None = None, cost: ScoreCost | None = None) -> DimensionScore:
    """A dimension from a judge's verdict: ok with ``score`` (default: the verdict), or failed with the raw replies."""
    cost = cost or ScoreCost(verdict.cost)
    if not verdict.ok:
        return DimensionScore(name, FAILED, reason=verdict.reason, details={**(details or {}), **verdict.failure()},
                              cost=cost)
    value = float(verdict.value if score is None else score)
    return DimensionScore(name, OK, value, details={"analysis": verdict.text, **(details or {})}, cost=cost)


def history_view(history: list[Message], max_messages: int, max_chars: int) -> list[Message]:
    """The last ``max_messages`` messages, each cut to ``max_chars`` characters (the judge needs the gist)."""
    shown = history[-max_messages:] if max_messages > 0 else []
    return [{"role": m["role"], "content": _cut(m["content"], max_chars)} for m in shown]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


async def rate(judge: Judge, name: str, lang: str, item: ScoreInput, response: str,
               history: list[Message]) -> DimensionScore:
    """Helpfulness or logicality of one response: the judge's analysis, then a strict ``[[0–10]]``."""
    verdict = await judge.ask(f"score/{name}", RATING, lang, query=item.query, response=response,
                              history=history)
    return from_judgement(name, verdict)
