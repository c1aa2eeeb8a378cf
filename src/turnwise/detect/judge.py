"""The optional second stage: an LLM judge confirms or rejects the cue decision of a turn.

Each task is three steps (build the prompt, call the model, parse the reply). The reply is parsed
strictly: its last non-empty line must be ``Verdict: dependent`` or ``Verdict: standalone``, and no other
line may give a verdict; anything else is a recorded failure with the raw text, never a guess.

The verdict enters the decision as strong evidence: ``judge_weight`` log-odds for its label are added to
the cue score. With the default (5) the judge overturns every cue decision but the overwhelming ones
(three strong cues at once), and every disagreement is kept in the evidence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from turnwise.data.schema import Message
from turnwise.detect.rules import TurnDecision, logistic
from turnwise.errors import ConfigError
from turnwise.judge.parse import ParseError
from turnwise.judge.replies import ANALYSIS, Reply, json_object, structured_messages
from turnwise.models.base import ChatModel, GenerationSettings
from turnwise.prompts import render
from turnwise.stage.runner import Cost

_VERDICT = re.compile(r"^\W*verdict\W*[:：]\s*\W*(dependent|standalone)\W*$", re.IGNORECASE)
_ANY_VERDICT = re.compile(r"verdict\W*[:：]", re.IGNORECASE)
JUDGE_ON = ("dependent", "all", "uncertain")


class VerdictError(ParseError):
    """The judge's reply has no single, final verdict line."""


def parse_verdict(text: str) -> bool:
    """True for ``Verdict: dependent``, False for ``Verdict: standalone`` on the reply's last line.

    Raises:
        VerdictError: the last non-empty line is not a verdict, or another line gives one too.
    """
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        raise VerdictError("empty reply")
    match = _VERDICT.match(lines[-1])
    if match is None:
        raise VerdictError("the last line is not 'Verdict: dependent' or 'Verdict: standalone'")
    if sum(bool(_ANY_VERDICT.search(line)) for line in lines) > 1:
        raise VerdictError("more than one verdict line")
    return match.group(1).lower() == "dependent"


VERDICT = Reply(parse_verdict, json_object({"reasoning": ANALYSIS,
                                            "verdict": {"type": "string", "enum": ["dependent", "standalone"]}}),
                lambda value: parse_verdict(f"Verdict: {value.get('verdict')}"),
                '{"reasoning": "...", "verdict": "dependent" | "standalone"}')


@dataclass(frozen=True)
class JudgeConfig:
    """How the judge is asked and how much its verdict weighs.

    Attributes:
        judge_on: ``dependent`` (confirm the turns the cues call dependent, as Parrot does), ``all``, or
            ``uncertain`` (turns whose cue confidence is below ``uncertain_below``).
        judge_weight: log-odds the verdict adds for its label.
        uncertain_below: the confidence under which a turn counts as uncertain.
        settings: generation settings of the judge's calls (the prompt's language is the conversation's).
        structured: hold the judge's replies to ``{"reasoning", "verdict"}`` by constrained decoding (a grammar on
            the local backend, ``response_format`` on an OpenAI-compatible server) and read them as JSON.
    """

    judge_on: str = "dependent"
    judge_weight: float = 5.0
    uncertain_below: float = 0.9
    settings: GenerationSettings = field(default_factory=lambda: GenerationSettings(temperature=0, max_tokens=256),
                                         metadata={"cli": "judge-"})
    structured: bool = field(default=False, metadata={"cli": "--structured"})

    def __post_init__(self) -> None:
        if self.judge_on not in JUDGE_ON:
            raise ConfigError(f"judge_on must be one of {', '.join(JUDGE_ON)}, got {self.judge_on!r}")

    def wants(self, decision: TurnDecision) -> bool:
        if self.judge_on == "all":
            return True
        if self.judge_on == "uncertain":
            return decision.confidence < self.uncertain_below
        return decision.dependent


def judge_prompt(messages: Sequence[Message], decision: TurnDecision, lang: str,
                 search_path: Sequence[str] = ()) -> str:
    history = [m for m in messages[: decision.index] if m["role"] != "system"]
    cues = [e for e in decision.evidence if e.get("weight", 0) > 0]
    return render("detect/judge", lang, search_path=search_path, history=history,
                  turn=messages[decision.index]["content"], cues=cues)


def apply_verdict(decision: TurnDecision, verdict: bool, weight: float, raw: str) -> TurnDecision:
    """The decision with the judge's verdict added to its score."""
    score = decision.score + (weight if verdict else -weight)
    p = logistic(score)
    entry = {"cue": "judge", "verdict": "dependent" if verdict else "standalone",
             "agrees": verdict == decision.dependent, "weight": weight if verdict else -weight, "raw": raw}
    return replace(decision, dependent=score > 0, confidence=round(max(p, 1 - p), 3), score=round(score, 3),
                   evidence=[*decision.evidence, entry], decided_by="judge")


@dataclass
class JudgeOutcome:
    decisions: list[TurnDecision]
    failures: list[dict[str, Any]]
    cost: Cost


async def judge_decisions(
    messages: Sequence[Message], decisions: list[TurnDecision], model: ChatModel, config: JudgeConfig, lang: str,
    search_path: Sequence[str] = (),
) -> JudgeOutcome:
    """Ask the judge about the turns ``config`` selects (one batched call); failures keep the cue decision."""
    asked = [d for d in decisions if config.wants(d)]
    cost = Cost()
    if not asked:
        return JudgeOutcome(decisions, [], cost)
    prompts = [[{"role": "user", "content": judge_prompt(messages, d, lang, search_path)}] for d in asked]
    settings, parse = config.settings, parse_verdict
    if config.structured:
        prompts = [structured_messages(p, VERDICT, lang, search_path) for p in prompts]
        settings, parse = replace(settings, json_schema=VERDICT.schema_text), VERDICT.parse_json
    completions = await model.chat(prompts, settings)
    judged: dict[int, TurnDecision] = {}
    failures = []
    for decision, completion in zip(asked, completions, strict=True):
        cost.add(completion)
        raw = completion.texts[0] if completion.texts else ""
        try:
            if not completion.ok:
                raise VerdictError(f"call failed: {completion.error}")
            judged[decision.index] = apply_verdict(decision, parse(raw), config.judge_weight, raw)
        except ParseError as exc:
            entry = {"cue": "judge", "error": str(exc), "raw": raw, "attempts": completion.attempts}
            judged[decision.index] = replace(decision, evidence=[*decision.evidence, entry])
            failures.append({"index": decision.index, "reason": str(exc), "raw": raw})
    return JudgeOutcome([judged.get(d.index, d) for d in decisions], failures, cost)
