"""Weigh the cues of a user turn into a label, a confidence and the evidence; and the pronoun-only baseline.

The score is a sum of log-odds: a bias (a turn with no cue stands alone) plus one weight per kind of cue
found (a kind counts once, however many times it occurs: "he ... his ... him" is one piece of evidence).
The turn is dependent when the score is above zero; the confidence is the logistic of the score, read
for the label given. The weights are set by linguistic strength, not fitted: a pronoun or an ellipsis
("what about ...?") nearly always needs its antecedent; a definite article or a very short turn often
does; a name in the turn, or a turn that only reacts ("Thanks!"), points the other way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from turnwise.data.schema import Message
from turnwise.detect import lexicon as lx
from turnwise.detect.cues import Cue, find_cues
from turnwise.detect.text import language, tokenize

DEFAULT_WEIGHTS: dict[str, float] = {
    "personal_pronoun": 2.5,
    "demonstrative": 2.0,
    "one_anaphora": 2.5,
    "ellipsis": 3.0,
    "ordinal_reference": 1.5,
    "additive": 1.5,
    "nominal_ellipsis": 2.0,
    "proform": 2.0,
    "fragment": 1.5,
    "definite_reference": 2.0,
    "bridging": 2.0,
    "definite_description": 1.0,
    "partial_name": 1.5,
    "short_turn": 1.5,
    "zero_anaphora": 1.5,
    "resolved_pronoun": 0.5,  # "Did John say he ...": the antecedent is in the turn itself
    "reaction": 0.0,  # "that's great": a demonstrative that is judged, not asked about
    "named_entity": -1.0,
    "phatic": -4.0,
}
DEFAULT_BIAS = -1.0


def logistic(score: float) -> float:
    """The probability that a log-odds ``score`` stands for."""
    return 1.0 / (1.0 + math.exp(-score))


@dataclass
class TurnDecision:
    """The label of one user turn.

    Attributes:
        index: the turn's 0-based position in the conversation's messages.
        dependent: whether the turn needs its history to be understood.
        confidence: probability of the label given (0.5 to 1).
        evidence: the cues found, each ``{"cue", "text", "weight"}``; a judge adds its own entry.
        score: the summed log-odds (positive: dependent).
        decided_by: ``cues``, or ``judge`` when an LLM judge confirmed or overturned the cue decision.
    """

    index: int
    dependent: bool
    confidence: float
    evidence: list[dict[str, Any]] = field(default_factory=list)
    score: float = 0.0
    decided_by: str = "cues"

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "dependent": self.dependent, "confidence": self.confidence,
                "evidence": self.evidence, "score": self.score, "decided_by": self.decided_by}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TurnDecision:
        keys = ("index", "dependent", "confidence", "evidence", "score", "decided_by")
        return cls(**{k: data[k] for k in keys if k in data})


@dataclass(frozen=True)
class RuleDetector:
    """Cue rules with fixed weights.

    Attributes:
        weights: log-odds per cue kind; a kind missing here weighs 0.
        bias: log-odds of a turn with no cue.
    """

    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    bias: float = DEFAULT_BIAS

    def score(self, cues: Sequence[Cue]) -> float:
        return self.bias + sum(self.weights.get(kind, 0.0) for kind in {c.kind for c in cues})

    def decide(self, index: int, cues: Sequence[Cue]) -> TurnDecision:
        score = self.score(cues)
        p = logistic(score)
        evidence = [{"cue": c.kind, "text": c.text, "weight": self.weights.get(c.kind, 0.0)} for c in cues]
        return TurnDecision(index, score > 0, round(max(p, 1 - p), 3), evidence, round(score, 3))

    def label_turn(self, turn: str, history: Sequence[str], index: int = 0, lang: str | None = None) -> TurnDecision:
        """Label one turn given the texts of the messages before it."""
        return self.decide(index, find_cues(turn, history, lang))

    def label_batch(self, conversations: Sequence[tuple[Sequence[Message], str]]) -> list[list[TurnDecision]]:
        """Label every user turn after the first of each ``(messages, lang)`` (as the learned detector does)."""
        return [detect_messages(messages, self, lang) for messages, lang in conversations]


def user_turns_after_first(messages: Sequence[Message]) -> list[int]:
    """Positions of the user turns that have a user turn before them (the ones that can depend on history)."""
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    return users[1:]


def detect_messages(
    messages: Sequence[Message], detector: RuleDetector | None = None, lang: str | None = None
) -> list[TurnDecision]:
    """Label every user turn after the first with the cue rules."""
    detector = detector or RuleDetector()
    decisions = []
    for i in user_turns_after_first(messages):
        history = [m["content"] for m in messages[:i] if m["role"] != "system"]
        decisions.append(detector.label_turn(messages[i]["content"], history, i, lang))
    return decisions


def pronoun_only(turn: str, lang: str | None = None) -> bool:
    """The baseline: dependent when the turn holds a personal or demonstrative pronoun (matched as a word)."""
    lang = lang or language(turn)
    vocab = (lx.PERSONAL_ZH | lx.DEMONSTRATIVE_ZH) if lang == "zh" else (lx.PERSONAL_EN | lx.DEMONSTRATIVE_EN)
    return any(t.low in vocab for t in tokenize(turn, lang))
