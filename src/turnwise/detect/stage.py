"""The detect stage: label every user turn after the first as dependent on its history or standalone.

    turnwise detect dialogues.jsonl detections.jsonl                          # the learned detector
    turnwise detect dialogues.jsonl detections.jsonl --method rules           # the cue rules alone
    turnwise detect dialogues.jsonl detections.jsonl --judge-model M --base-url URL   # + LLM judge

One record per conversation: ``{id, status, turns: [{index, dependent, confidence, evidence, score,
decided_by}], lang, meta}``, where ``index`` is the turn's 0-based position in the messages. A judge
reply that cannot be parsed leaves the cue decision in place, the raw reply in the turn's evidence, and
the record ``failed`` (``--retry-failed`` asks again); a conversation with one user turn is ``filtered``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from turnwise.data.schema import Conversation, Message
from turnwise.detect.judge import JudgeConfig, judge_decisions
from turnwise.detect.rules import RuleDetector, TurnDecision
from turnwise.detect.text import language
from turnwise.errors import ConfigError
from turnwise.models.base import ChatModel
from turnwise.records import RecordStore, make_record
from turnwise.stage.runner import Cost, run_bounded, unfinished


class Detector(Protocol):
    """What labels turns: :class:`RuleDetector` or :class:`turnwise.detect.learned.LearnedDetector`."""

    def label_batch(self, conversations: Sequence[tuple[Sequence[Message], str]]) -> list[list[TurnDecision]]: ...


def detector_name(detector: Detector) -> str:
    """``rules``, or ``learned:`` and the first 12 hex digits of the model's sha256."""
    digest = getattr(detector, "digest", None)
    return f"learned:{digest[:12]}" if digest else "rules"


@dataclass(frozen=True)
class DetectConfig:
    """Settings of the detect stage.

    Attributes:
        detector: the cue rules (:class:`RuleDetector`) or a learned detector.
        lang: ``en`` or ``zh`` for every conversation; None detects it per conversation from its user turns.
        judge: how to ask the LLM judge; None runs the cues alone.
        search_path: template folders searched before the package's own (``detect/judge.<lang>.jinja``).
    """

    detector: Detector = field(default_factory=RuleDetector)
    lang: str | None = None
    judge: JudgeConfig | None = None
    search_path: tuple[str, ...] = ()


@dataclass
class DetectResult:
    """Totals of one run (this run only)."""

    cost: Cost = field(default_factory=Cost)
    records: int = 0
    turns: int = 0
    dependent: int = 0
    judged: int = 0
    judge_failures: int = 0


def conversation_language(messages: list[Message]) -> str:
    """The language of a conversation's user turns."""
    return language(" ".join(m["content"] for m in messages if m["role"] == "user"))


async def detect_conversation(
    conv: Conversation, config: DetectConfig, judge_model: ChatModel | None = None,
    decisions: list[TurnDecision] | None = None,
) -> dict[str, Any]:
    """Label the conversation's turns (and ask the judge where configured); return the stage record.

    ``decisions``: the detector's, when the caller labelled a batch of conversations at once.
    """
    lang = config.lang or conversation_language(conv.messages)
    if decisions is None:
        [decisions] = config.detector.label_batch([(conv.messages, lang)])
    # The input's own cost (e.g. a simulation's) is not this stage's: it stays with the input record.
    meta: dict[str, Any] = {**{k: v for k, v in conv.meta.items() if k != "cost"},
                            "detector": detector_name(config.detector), "cost": Cost().to_dict()}
    if not decisions:
        return make_record(conv.id, "filtered", {"turns": [], "lang": lang}, reason="no user turn after the first",
                           meta=meta)
    status, reason = "ok", None
    if config.judge is not None and judge_model is not None:
        outcome = await judge_decisions(conv.messages, decisions, judge_model, config.judge, lang,
                                        config.search_path)
        decisions = outcome.decisions
        meta["judge"] = {"backend": judge_model.backend, "model": judge_model.model,
                         "template": f"detect/judge.{lang}.jinja", "failures": outcome.failures}
        meta["cost"] = outcome.cost.to_dict()
        if outcome.failures:
            first = outcome.failures[0]
            status, reason = "failed", f"judge: {first['reason']} (turn {first['index']})"
    turns = [d.to_dict() for d in decisions]
    return make_record(conv.id, status, {"turns": turns, "lang": lang}, reason=reason, meta=meta)


async def run_detect(
    conversations: Iterable[Conversation],
    store: RecordStore,
    config: DetectConfig,
    judge_model: ChatModel | None = None,
    *,
    max_in_flight: int = 64,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    batch_size: int = 64,
) -> DetectResult:
    """Label every conversation not yet in ``store``; each record is written as soon as it is done.

    Args:
        conversations: the input stream; ids must be unique.
        store: the resumable output; finished ids are skipped.
        config: detector, language and judge settings.
        judge_model: the judge (wrap it in CachedChatModel); required when ``config.judge`` is set.
        max_in_flight: conversations in work at once.
        on_record: called with each record written (progress bars).
        batch_size: conversations the detector labels at once (the learned one embeds them in one pass).
    """
    if config.judge is not None and judge_model is None:
        raise ConfigError("the judge is configured but no judge model was given")
    result = DetectResult()

    async def work(item: tuple[Conversation, list[TurnDecision]]) -> None:
        record = await detect_conversation(item[0], config, judge_model, item[1])
        store.append(record)
        _count(result, record)
        if on_record is not None:
            on_record(record)

    pending = unfinished(conversations, store.done, "conversation")
    for chunk in _chunks(pending, max(batch_size, 1)):
        langs = [config.lang or conversation_language(c.messages) for c in chunk]
        # The learned detector's forward passes run in a thread, off the event loop that carries the judge's calls.
        labelled = await asyncio.to_thread(config.detector.label_batch,
                                           [(c.messages, lang) for c, lang in zip(chunk, langs, strict=True)])
        await run_bounded(list(zip(chunk, labelled, strict=True)), work, max_in_flight)
    return result


def _chunks(items: Iterable[Conversation], size: int) -> Iterator[list[Conversation]]:
    chunk: list[Conversation] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _count(result: DetectResult, record: dict[str, Any]) -> None:
    result.records += 1
    result.turns += len(record["turns"])
    result.dependent += sum(t["dependent"] for t in record["turns"])
    result.judged += sum(t["decided_by"] == "judge" for t in record["turns"])
    result.judge_failures += len(record["meta"].get("judge", {}).get("failures", []))
    result.cost += Cost(**record["meta"].get("cost", {}))
