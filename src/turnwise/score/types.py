"""What every scorer takes and returns, so that recipes can mix AI-feedback and verifiable scores.

A scorer scores the responses to one prompt at once (``score(item, responses)``), which lets it do the
work they share once: the context's retrieval index and the completeness key points in LongReward.
Each response gets a :class:`ScoreResult`: one :class:`DimensionScore` per dimension, each ``ok`` with a
0–10 score, ``n/a`` (nothing to score: no context, no factual statement, no reference answer) or
``failed`` (the judge never gave a valid verdict; its raw replies are kept). The total is the weighted
mean of the ``ok`` dimensions; one failed dimension fails the response, so a half-scored response is
never ranked against fully scored ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from turnwise.data.schema import Message
from turnwise.stage.runner import Cost

OK, NA, FAILED = "ok", "n/a", "failed"


@dataclass
class ScoreInput:
    """One prompt to score responses to.

    Attributes:
        id: the prompt's id.
        query: the request being answered (for a dialogue, its last user turn).
        context: what an answer should be grounded in: a long document, or the conversation so far.
        history: earlier turns, shown to the judges of helpfulness and logicality so that a follow-up
            ("and the second one?") can be understood.
        reference: the ground-truth answer, for verifiable scorers.
        prompt: the prompt's messages as given (system message and a long document included), for scorers that
            read the conversation whole (a reward model); empty = ``history`` then ``query``.
    """

    id: str
    query: str
    context: str = ""
    history: list[Message] = field(default_factory=list)
    reference: str | None = None
    prompt: list[Message] = field(default_factory=list)

    @classmethod
    def from_prompt(cls, id: str, messages: list[Message], meta: dict[str, Any] | None = None) -> ScoreInput:
        """From a prompt ending with a user turn and its record's ``meta``.

        ``meta["context"]`` and ``meta["query"]`` split a long-document prompt (LongReward's layout: the user
        turn holds the document and the question); without them the query is the last user turn and the
        context is the conversation before it. ``meta["reference"]`` is the ground truth, if any.
        """
        meta = meta or {}
        history = [m for m in messages[:-1] if m["role"] != "system"]
        context = meta.get("context")
        reference = meta.get("reference")
        return cls(
            id=id,
            query=str(meta.get("query") or messages[-1]["content"]),
            context=str(context) if context else render_history(history),
            history=history,
            reference=None if reference is None else str(reference),
            prompt=list(messages),
        )


def render_history(history: Sequence[Message]) -> str:
    """A conversation as plain text, one ``role: content`` paragraph per message (the dialogue's context)."""
    return "\n\n".join(f"{m['role']}: {m['content']}" for m in history)


@dataclass
class ScoreCost:
    """What scoring paid for.

    Attributes:
        judge: judge calls (retries included) and tokens.
        embedded: texts the embedding model computed (memoised ones not counted).
    """

    judge: Cost = field(default_factory=Cost)
    embedded: int = 0

    def __iadd__(self, other: ScoreCost) -> ScoreCost:
        self.judge += other.judge
        self.embedded += other.embedded
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"judge": self.judge.to_dict(), "embedded": self.embedded}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoreCost:
        return cls(Cost(**data.get("judge", {})), int(data.get("embedded", 0)))


@dataclass
class DimensionScore:
    """One dimension of one response.

    Attributes:
        name: e.g. ``helpfulness``.
        status: ``ok``, ``n/a`` or ``failed``.
        score: 0–10 when ok.
        reason: why n/a or failed.
        details: the evidence: the judge's analysis, statements and verdicts, raw replies of a failure.
        cost: what this dimension paid for.
    """

    name: str
    status: str
    score: float | None = None
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    cost: ScoreCost = field(default_factory=ScoreCost)

    def to_dict(self, details: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "score": self.score}
        if self.reason:
            out["reason"] = self.reason
        if details and self.details:
            out["details"] = self.details
        return out


@dataclass
class ScoreResult:
    """The scores of one response.

    Attributes:
        dimensions: one entry per dimension, in the scorer's order.
        weights: weight of each dimension in the total (missing: 1.0).
    """

    dimensions: list[DimensionScore]
    weights: dict[str, float] = field(default_factory=dict)

    @property
    def status(self) -> str:
        if any(d.status == FAILED for d in self.dimensions):
            return FAILED
        return OK if any(d.status == OK for d in self.dimensions) else FAILED

    @property
    def reason(self) -> str | None:
        failed = [f"{d.name}: {d.reason}" for d in self.dimensions if d.status == FAILED]
        if failed:
            return "; ".join(failed)
        return None if self.status == OK else "no dimension applies (" + "; ".join(
            f"{d.name}: {d.reason}" for d in self.dimensions) + ")"

    @property
    def total(self) -> float | None:
        """Weighted mean of the ok dimensions; None unless the response is fully scored."""
        if self.status != OK:
            return None
        scored = [(self.weights.get(d.name, 1.0), d.score) for d in self.dimensions if d.status == OK]
        weight = sum(w for w, _ in scored)
        return sum(w * s for w, s in scored if s is not None) / weight if weight else None

    @property
    def cost(self) -> ScoreCost:
        total = ScoreCost()
        for d in self.dimensions:
            total += d.cost
        return total

    def scores(self) -> dict[str, float | None]:
        """Every dimension's score (None when n/a or failed) and ``total``: the same keys for every response."""
        return {**{d.name: d.score for d in self.dimensions}, "total": self.total}

    def to_dict(self, details: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "total": self.total, "scores": self.scores()}
        if self.reason:
            out["reason"] = self.reason
        out["dimensions"] = {d.name: d.to_dict(details) for d in self.dimensions}
        out["cost"] = self.cost.to_dict()
        return out


@dataclass
class ScoreBatch:
    """The scores of the responses to one prompt.

    Attributes:
        results: one per response, in order.
        shared: work done once for all of them (the context index, the completeness key points); zero
            when an earlier call already did it.
    """

    results: list[ScoreResult]
    shared: ScoreCost = field(default_factory=ScoreCost)


class Scorer(Protocol):
    """Scores responses to a prompt, 0–10 per dimension.

    Attributes:
        name: the scorer's name in configs and manifests.
        dimensions: the names its results report, always all of them, in this order.
    """

    name: str
    dimensions: tuple[str, ...]

    async def score(self, item: ScoreInput, responses: Sequence[str]) -> ScoreBatch: ...

    def describe(self) -> dict[str, Any]: ...
