"""Which turns get preference pairs: the dependent user turns of each dialogue, and which strategies each gets.

A task is one dependent user turn: its prompt (the dialogue up to and including the turn, the DPO
prompt), the dialogue's own answer to it (the default chosen answer), and the detector's decision and
evidence. The per-strategy mix is applied per task with a stable hash, so a re-run selects the same
strategies and a ratio of ``2:1:1`` gives about twice as many neglect pairs as each of the others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from turnwise.data.schema import Conversation, Message
from turnwise.detect.rules import RuleDetector, TurnDecision, detect_messages
from turnwise.detect.stage import conversation_language
from turnwise.errors import ConfigError


def stable_seed(*parts: object) -> int:
    """A 31-bit seed from its parts, the same on every machine and run (not Python's salted ``hash``)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class PairTask:
    """One dependent user turn to build pairs for.

    Attributes:
        source_id: the dialogue's id.
        index: the turn's 0-based position in the dialogue's messages.
        prompt: the messages up to and including the turn.
        own_answer: the dialogue's assistant answer to the turn, or None when the dialogue stops there.
        decision: the detector's decision (confidence, evidence).
        lang: the dialogue's language (``en`` or ``zh``), for prompt templates.
        reference: the ground truth of the answer to this turn, for a check (``meta.references[k]`` of the
            dialogue for its k-th user turn), or None.
    """

    source_id: str
    index: int
    prompt: tuple[Message, ...]
    own_answer: str | None
    decision: TurnDecision
    lang: str
    reference: str | None = None

    @property
    def query(self) -> str:
        return self.prompt[-1]["content"]

    @property
    def system(self) -> Message | None:
        return self.prompt[0] if self.prompt[0]["role"] == "system" else None

    @property
    def history(self) -> list[Message]:
        """The messages between the system message and the turn: whole user/assistant exchanges."""
        start = 1 if self.system else 0
        return list(self.prompt[start:-1])

    def key(self, strategy: str) -> str:
        """The id of this task's pair for ``strategy``."""
        return f"{self.source_id}:{self.index}:{strategy}"


def tasks_for(
    conv: Conversation, decisions: Sequence[TurnDecision], lang: str, min_confidence: float = 0.0
) -> list[PairTask]:
    """The tasks of a dialogue: its turns decided dependent with at least ``min_confidence``."""
    tasks = []
    references = conv.meta.get("references") or []
    for d in decisions:
        if not d.dependent or d.confidence < min_confidence:
            continue
        following = conv.messages[d.index + 1] if d.index + 1 < len(conv.messages) else None
        own = following["content"] if following and following["role"] == "assistant" else None
        k = sum(m["role"] == "user" for m in conv.messages[: d.index])  # the turn's place among the user turns
        reference = references[k] if k < len(references) and isinstance(references[k], str) else None
        tasks.append(PairTask(conv.id, d.index, tuple(conv.messages[: d.index + 1]), own, d, lang, reference))
    return tasks


def iter_tasks(
    conversations: Iterable[Conversation],
    detections: Mapping[str, Sequence[TurnDecision]] | None = None,
    *,
    detector: RuleDetector | None = None,
    lang: str | None = None,
    min_confidence: float = 0.0,
) -> Iterator[PairTask]:
    """Tasks of every dialogue, from ``detections`` (a detect run's decisions by dialogue id) or the cue rules.

    A dialogue missing from ``detections`` has no tasks (its detection failed or was filtered).
    """
    for conv in conversations:
        conv_lang = lang or conversation_language(conv.messages)
        if detections is not None:
            decisions = detections.get(conv.id, [])
        else:
            decisions = detect_messages(conv.messages, detector or RuleDetector(), conv_lang)
        yield from tasks_for(conv, decisions, conv_lang, min_confidence)


def parse_mix(text: str, strategies: Sequence[str]) -> dict[str, float]:
    """``"neglect=2,hallucination=1,misunderstanding=1"`` → ratios; strategies not named get 0.

    Raises:
        ConfigError: an unknown strategy, a negative or non-numeric ratio, or all ratios zero.
    """
    mix = dict.fromkeys(strategies, 0.0)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in mix:
            raise ConfigError(f"unknown strategy {name!r} in the mix (expected {', '.join(strategies)})")
        try:
            ratio = float(value) if value.strip() else 1.0
        except ValueError:
            raise ConfigError(f"the mix ratio of {name} must be a number, got {value!r}") from None
        if ratio < 0:
            raise ConfigError(f"the mix ratio of {name} must be >= 0, got {ratio}")
        mix[name] = ratio
    if not any(mix.values()):
        raise ConfigError("the mix selects no strategy (every ratio is 0)")
    return mix


def selected_strategies(task: PairTask, mix: Mapping[str, float], seed: int) -> list[str]:
    """The strategies this task gets: each with probability ratio / largest ratio, by a stable hash."""
    top = max(mix.values())
    chosen = []
    for strategy, ratio in mix.items():
        if ratio <= 0:
            continue
        draw = stable_seed(seed, task.source_id, task.index, strategy, "mix") / 0x7FFFFFFF
        if ratio >= top or draw < ratio / top:
            chosen.append(strategy)
    return chosen
