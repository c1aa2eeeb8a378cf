"""Rewrite a follow-up into a self-contained query for retrieval: gate, prompt, strict parse, failures as data.

    rewriter = Rewriter(model, RewriteConfig(variant="cot"))
    done = await rewriter.rewrite(history, "How long is it?")
    done.query        # "How long is the Nile?": what the retriever searches
    done.status       # rewritten | unchanged | skipped (the gate made no call) | failed (query = the question)

The **gate** saves the call where it cannot help: a turn with nothing before it (no earlier message and no
topic) is never sent, and with ``gate="rules"`` neither is a turn the context-dependence detector
(:class:`turnwise.detect.RuleDetector`) finds standalone. A topic (CANARD's article title and section)
counts as context: a first question can lean on it ("where was he born?").

The prompt (``rag/rewrite_cot`` or ``rag/rewrite_direct``, English or Chinese, few-shot) asks for the final
rewrite on a line ``Rewrite: …`` (``改写：…`` in Chinese; either marker is read in both). The reply is parsed
strictly: the last marked line wins; no marked line, an empty rewrite, the format's placeholder, a change
of language, a rewrite that goes on after its question mark (one question, not a run of them: a small model's
greedy decoding loops "What was X? What was X? …"), or one that adds more than ``max_added_tokens`` tokens to the
question (an answer, not a rewrite) are failures, kept with the raw reply. Decoding is greedy (temperature 0).
With ``structured``, the reply is ``{"reasoning", "rewrite"}`` (``{"rewrite"}`` for the direct prompt) held to a
JSON schema whose rewrite ends at its first question mark and fits ``max_tokens``; the same checks apply, and a
rewrite that fills the schema's length (cut by the grammar, not ended by the model) is a failure too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from turnwise.data.schema import Message
from turnwise.detect.rules import RuleDetector, TurnDecision
from turnwise.errors import ConfigError
from turnwise.judge.core import RetryPolicy, ask_judge
from turnwise.judge.parse import ParseError
from turnwise.judge.replies import Reply, json_object, room, words
from turnwise.models.base import ChatModel
from turnwise.prompts import LANGS, detect_lang, prompt_messages
from turnwise.rag.metrics import tokens
from turnwise.retrieval.chunking import count_tokens
from turnwise.stage.runner import Cost

VARIANTS = ("cot", "direct")
GATES = ("rules", "always")
STATUSES = ("rewritten", "unchanged", "skipped", "failed")

# "Rewrite: …", "**Rewrite:** …", "改写：…"; the marker must open the line.
_MARKER = re.compile(r"^[\s*_#>-]*(?:rewrite|改写)[\s*_]*[:：][\s*_]*(?P<text>.*?)[\s*_]*$", re.IGNORECASE)
_QUOTES = ("\"\"", "“”", "''", "‘’", "「」", "『』", "<>", "``")
_PLACEHOLDERS = {"the self-contained question", "可以独立理解的问题"}
_WORDY = re.compile(r"[^\W_]")
REASONING_CHARS = 300  # the chain of thought, briefly, before the JSON rewrite
QUESTION_ENDS = "?？"  # a rewrite is one question: nothing follows its question mark
_RUNS_ON = re.compile(f"[{QUESTION_ENDS}]" + r"[\s\"'”’」』)）]*[^\s\"'”’」』)）]")


@dataclass(frozen=True)
class RewriteConfig:
    """How follow-ups are rewritten.

    Attributes:
        variant: ``cot`` (reason, then rewrite) or ``direct`` (the rewrite alone).
        lang: prompt language: ``auto`` (the question's), ``en`` or ``zh``.
        gate: ``rules`` (skip turns the detector finds standalone) or ``always`` (call for every turn that has
            context). A turn without any context is never sent.
        few_shot: include the worked examples in the prompt.
        max_tokens: most tokens of one reply (the chain of thought needs room).
        attempts: tries per turn; the first is greedy, later ones sample (see :class:`RetryPolicy`).
        history_messages: most recent messages shown to the rewriter.
        max_added_tokens: a rewrite longer than the question by more than this is rejected as an answer.
        search_path: folders searched for templates before the package's own.
        detector: the cue rules of the gate.
        structured: hold replies to ``{"reasoning", "rewrite"}`` by constrained decoding and read the JSON.
    """

    variant: str = "cot"
    lang: str = "auto"
    gate: str = "rules"
    few_shot: bool = True
    max_tokens: int = 384
    attempts: int = 1
    history_messages: int = 12
    max_added_tokens: int = 64
    search_path: tuple[str, ...] = ()
    detector: RuleDetector = field(default_factory=RuleDetector)
    structured: bool = False

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"unknown rewrite variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        if self.gate not in GATES:
            raise ConfigError(f"unknown rewrite gate {self.gate!r}; choose one of {', '.join(GATES)}")
        if self.lang != "auto" and self.lang not in LANGS:
            raise ConfigError(f"no rewrite prompts in {self.lang!r}; choose auto or one of {', '.join(LANGS)}")
        if self.attempts < 1 or self.history_messages < 0 or self.max_added_tokens < 0:
            raise ConfigError("attempts must be >= 1; history_messages and max_added_tokens >= 0")

    @property
    def template(self) -> str:
        return f"rag/rewrite_{self.variant}"

    def policy(self) -> RetryPolicy:
        return RetryPolicy(attempts=self.attempts, first_temperature=0.0, max_tokens=self.max_tokens)

    def describe(self) -> dict[str, Any]:
        return {"variant": self.variant, "template": self.template, "lang": self.lang, "gate": self.gate,
                "few_shot": self.few_shot, "max_tokens": self.max_tokens, "attempts": self.attempts,
                "history_messages": self.history_messages, "max_added_tokens": self.max_added_tokens,
                **({"structured": True} if self.structured else {})}


@dataclass(frozen=True)
class Gate:
    """Whether a turn goes to the rewriter, and why (``first turn``, ``standalone``, ``dependent``, ``gate off``)."""

    call: bool
    reason: str
    decision: TurnDecision | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"call": self.call, "reason": self.reason}
        if self.decision is not None:
            out.update(confidence=self.decision.confidence, cues=[e["cue"] for e in self.decision.evidence])
        return out


@dataclass
class Rewrite:
    """The outcome for one turn.

    Attributes:
        question: the turn as the user wrote it.
        query: what to search: the rewrite, or the question itself when skipped or failed.
        status: ``rewritten``, ``unchanged`` (the model kept it), ``skipped`` (no call) or ``failed``.
        gate: the gate's decision.
        lang: the prompt language.
        reason: why it failed.
        raw: every reply, as written (one per attempt).
        errors: why each rejected reply was rejected.
        cost: the calls made.
    """

    question: str
    query: str
    status: str
    gate: Gate
    lang: str
    reason: str | None = None
    raw: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cost: Cost = field(default_factory=Cost)

    @property
    def rewrite(self) -> str | None:
        """The rewrite (the question itself when no call was needed); None when the rewriter failed."""
        return None if self.status == "failed" else self.query

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"question": self.question, "query": self.query, "status": self.status,
                               "gate": self.gate.to_dict(), "lang": self.lang}
        if self.raw:
            out["raw"] = list(self.raw)
        if self.status == "failed":
            out.update(reason=self.reason, errors=self.errors, attempts=len(self.raw))
        return out


def _unquote(text: str) -> str:
    text = text.strip()
    while len(text) >= 2 and any(text[0] == a and text[-1] == b for a, b in _QUOTES):
        text = text[1:-1].strip()
    return text


def parse_rewrite(text: str, question: str, *, max_added_tokens: int = 64) -> str:
    """The rewrite on the last marked line of a reply, checked.

    Raises:
        ParseError: no marked line, an empty rewrite, the placeholder, another language, or too long.
    """
    found = [m.group("text") for line in text.splitlines() if (m := _MARKER.match(line))]
    if not found:
        raise ParseError("no 'Rewrite:' line in the reply")
    rewrite = _unquote(found[-1])
    if not rewrite:
        raise ParseError("the 'Rewrite:' line is empty")
    if rewrite.strip("<>").lower() in _PLACEHOLDERS:
        raise ParseError("the reply repeats the format's placeholder")
    if not _WORDY.search(rewrite):
        raise ParseError("the rewrite has no words")
    if _RUNS_ON.search(rewrite):
        raise ParseError("the rewrite goes on after its question mark: one question, not several")
    if _WORDY.search(question) and detect_lang(rewrite) != detect_lang(question):
        raise ParseError(f"the rewrite is in {detect_lang(rewrite)}, the question in {detect_lang(question)}")
    added = count_tokens(rewrite) - count_tokens(question)
    if added > max_added_tokens:
        raise ParseError(f"the rewrite adds {added} tokens to the question (at most {max_added_tokens}): "
                         "an answer, not a rewrite")
    return rewrite


def rewrite_reply(question: str, max_added_tokens: int = 64, reasoning: bool = True, max_tokens: int = 384
                  ) -> Reply[str]:
    """A rewrite: a ``Rewrite:`` line in text, ``{"reasoning", "rewrite"}`` as JSON (``{"rewrite"}`` for the direct
    prompt, which asks for no reasoning); the same checks either way. The JSON rewrite ends at its first question
    mark and is sized to fit ``max_tokens`` beside the reasoning; one that fills that size was cut by the grammar
    and is refused."""
    # room for any of CANARD's rewrites (the longest has 260 characters) where max_tokens allows; one schema for
    # every question, so that concurrent rewrites share a batch
    longest = max(40, min(320, room(max_tokens) - (REASONING_CHARS if reasoning else 0)))

    def read(value: dict[str, Any]) -> str:
        if not isinstance(value.get("rewrite"), str):
            raise ParseError("the JSON reply has no string 'rewrite'")
        if len(value["rewrite"]) >= longest:
            raise ParseError(f"the rewrite fills the {longest} characters the schema allows: cut off, not ended")
        return parse_rewrite(f"Rewrite: {value['rewrite']}", question, max_added_tokens=max_added_tokens)

    rewrite = words(longest, ends=QUESTION_ENDS)
    fields = {"reasoning": {"type": "string", "maxLength": REASONING_CHARS}, "rewrite": rewrite} if reasoning \
        else {"rewrite": rewrite}
    example = '{"reasoning": "...", "rewrite": "..."}' if reasoning else '{"rewrite": "..."}'
    return Reply(lambda text: parse_rewrite(text, question, max_added_tokens=max_added_tokens), json_object(fields),
                 read, example)


def _context(history: Sequence[Message], topic: str | None) -> list[str]:
    texts = [m["content"] for m in history if m["role"] != "system"]
    return [topic, *texts] if topic else texts


class Rewriter:
    """Rewrites follow-ups with a chat model (any backend; in the CLI behind the response cache).

    Args:
        model: the rewriting model.
        config: prompt variant, gate, parsing limits.
    """

    def __init__(self, model: ChatModel, config: RewriteConfig | None = None):
        self.model = model
        self.config = config or RewriteConfig()

    def language(self, history: Sequence[Message], question: str) -> str:
        if self.config.lang != "auto":
            return self.config.lang
        if _WORDY.search(question):
            return detect_lang(question)
        return detect_lang(" ".join(m["content"] for m in history if m["role"] == "user"))

    def gate(self, history: Sequence[Message], question: str, topic: str | None, lang: str) -> Gate:
        """Whether ``question`` needs the model (see the module's docstring)."""
        context = _context(history, topic)
        if not context:
            return Gate(False, "first turn")
        if self.config.gate == "always":
            return Gate(True, "gate off")
        decision = self.config.detector.label_turn(question, context, len(history), lang)
        return Gate(decision.dependent, "dependent" if decision.dependent else "standalone", decision)

    def messages(self, history: Sequence[Message], question: str, topic: str | None, lang: str) -> list[Message]:
        """The rewriter's prompt: the template as one user message, with the latest messages of the history."""
        shown = [m for m in history if m["role"] != "system"]
        shown = shown[-self.config.history_messages:] if self.config.history_messages else []
        return prompt_messages(self.config.template, lang, search_path=self.config.search_path, history=shown,
                               question=question, topic=topic, few_shot=self.config.few_shot,
                               structured=self.config.structured)

    async def rewrite(self, history: Sequence[Message], question: str, topic: str | None = None) -> Rewrite:
        """Gate, prompt, call and parse one turn; a failure is returned (query = the question), never raised."""
        lang = self.language(history, question)
        gate = self.gate(history, question, topic, lang)
        if not gate.call:
            return Rewrite(question, question, "skipped", gate, lang)
        messages = self.messages(history, question, topic, lang)
        budget = self.config.max_added_tokens
        reply = rewrite_reply(question, budget, reasoning=self.config.variant == "cot",
                              max_tokens=self.config.max_tokens)
        verdict = await ask_judge(self.model, messages, reply, self.config.policy(),
                                  structured=self.config.structured, lang=lang, search_path=self.config.search_path)
        if not verdict.ok or verdict.value is None:
            tries = len(verdict.raw)
            reason = f"no valid rewrite after {tries} attempt{'s' * (tries != 1)}: {verdict.errors[-1]}"
            return Rewrite(question, question, "failed", gate, lang, reason, verdict.raw, verdict.errors, verdict.cost)
        status = "unchanged" if tokens(verdict.value, lang) == tokens(question, lang) else "rewritten"
        return Rewrite(question, verdict.value, status, gate, lang, None, verdict.raw, verdict.errors, verdict.cost)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.model.backend, "model": self.model.model, **self.config.describe()}
