"""Multi-turn rollouts: the policy answers, the user simulator writes the next user turn, for K turns.

    rollout = await continue_dialogue(prompt, answer, policy=policy, user=ModelUser(ask_model), scorer=scorer,
                                      cfg=RolloutConfig(turns=3), meta={"reference": "the Nile: 6,650 km"})
    rollout.reward        # what the trainer optimises the first answer for

A rollout starts from a prompt (a dialogue ending on a user turn) and a *candidate* answer to it, the one an
online trainer samples and optimises. Then, for turns 2..K, the user simulator writes the next user turn and the
policy answers it. :class:`ModelUser`: a trained ask model or any model prompted to play the user, exactly as
``turnwise simulate`` asks it, its drafts filtered and drawn again as ``turnwise simulate`` filters them, with a
reference when a ``reference`` function can tell what a right answer states; :class:`ReplayUser`: the record's
own later user turns, for a world that knows their answers. Every assistant turn k is scored by the scorer (a
checker against the turn's reference, a judge, a reward model: :mod:`turnwise.score`), r_k = total / 10 in
[0, 1]; a turn the scorer cannot score (no reference, a failed judge) has no reward and does not count.

The candidate's reward is multi-turn aware (CollabLLM, ICML 2025: the value of an answer includes how the
conversation it leads to goes): the discounted mean

    R = Σ_k γ^(k−1) r_k / Σ_k γ^(k−1)        over the scored turns k = 1..K,

so γ = 0 scores the first answer alone and γ = 1 every turn alike. Each rollout is a record (every message,
who wrote it, each turn's reward and reference), kept for inspection.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from turnwise.data.schema import Message
from turnwise.models.base import ChatModel, GenerationSettings
from turnwise.score.types import OK, ScoreInput, Scorer


@dataclass(frozen=True)
class RolloutConfig:
    """How far a rollout goes and how its turns add up.

    Attributes:
        turns: assistant turns per rollout, K, the candidate answer included (1 = the candidate alone).
        discount: γ, the weight of turn k is γ^(k−1).
        policy: generation settings of the policy's later answers (its first, the candidate, is the trainer's).
        user: generation settings of the user simulator.
    """

    turns: int = 3
    discount: float = 1.0
    policy: GenerationSettings = field(default_factory=lambda: GenerationSettings(temperature=0.0, max_tokens=128))
    user: GenerationSettings = field(default_factory=lambda: GenerationSettings(temperature=0.7, max_tokens=64))

    def __post_init__(self) -> None:
        if self.turns < 1:
            raise ValueError(f"turns must be at least 1, got {self.turns}")
        if not 0 <= self.discount <= 1:
            raise ValueError(f"discount must be in [0, 1], got {self.discount}")


@dataclass(frozen=True)
class UserTurn:
    """A user turn a simulator wrote, and what a right answer to it states, when the simulator knows.

    Attributes:
        text: the user turn.
        reference: what a right answer states (for a checker), or None.
        rejected: the filter reasons of the drafts regenerated before this one.
    """

    text: str
    reference: str | None = None
    rejected: tuple[str, ...] = ()


@dataclass(frozen=True)
class EndTurn:
    """The simulator ends the dialogue: ``by`` ``user`` (it said so, or has no more turns), ``filter`` (no draft
    passed the filters: ``reason`` says the last one's) or ``error`` (its model failed)."""

    by: str
    reason: str = ""
    rejected: tuple[str, ...] = ()


class UserSimulator(Protocol):
    """Writes the next user turn of a dialogue, or ends it. ``name`` is who the rollouts say spoke."""

    name: str

    async def next_turn(self, messages: list[Message], meta: dict[str, Any], turn: int) -> UserTurn | EndTurn: ...


class ModelUser:
    """A model plays the user: ``mode="ask"`` for an ask model (roles flipped, as it was trained), ``"prompted"``
    for an instruction model told to play the user (``turnwise simulate``'s prompts and end marker).

    Each draft goes through ``turnwise simulate``'s user-turn filters (``filters``: too short, a role label, an
    answer instead of a question, repeated, near-duplicate, sensitive, off-language, and a ``check`` of your own:
    ``check(text, messages)`` returns why it rejects a draft, or None; default the ``filters.check`` one)
    and is regenerated up to ``regenerations`` times; ``reference(messages)`` (the dialogue ending on the new user
    turn) tells what a right answer to it states, for a checker, when a world can tell (None: no reference, and a
    checker leaves the turn unscored; a reward model or a judge still scores it).
    """

    def __init__(self, model: ChatModel, *, mode: str = "ask", lang: str = "en", end_marker: str | None = None,
                 settings: GenerationSettings | None = None, filters: Any = None, regenerations: int = 2,
                 reference: Callable[[list[Message]], str | None] | None = None,
                 check: Callable[[str, list[Message]], str | None] | None = None, name: str | None = None):
        from turnwise.score.verifiable import load_callable
        from turnwise.simulate.filters import FilterConfig
        from turnwise.simulate.prompts import simulator_prompt

        self.model = model
        self.name = f"{mode}:{name or model.model}"  # what the rollouts say spoke: the model as the user named it
        self.prompt = simulator_prompt(mode, lang, end_marker=end_marker)
        self.settings = settings or GenerationSettings(temperature=0.7, max_tokens=64)
        self.filters = filters if filters is not None else FilterConfig()
        if check is None and self.filters.check:
            check = load_callable(self.filters.check, "user-turn filter")
        self._check = check
        self.regenerations = regenerations
        self.reference = reference

    async def next_turn(self, messages: list[Message], meta: dict[str, Any], turn: int) -> UserTurn | EndTurn:
        from turnwise.simulate.filters import check_user_turn, detect_language
        from turnwise.simulate.prompts import flip_roles

        history = _history(messages)
        first_user = next((m["content"] for m in messages if m["role"] == "user"), "")
        view, marker, rejected = flip_roles(messages, self.prompt), self.prompt.end_marker, []
        for _attempt in range(self.regenerations + 1):
            [completion] = await self.model.chat([view], self.settings)
            if not completion.ok or not completion.texts:
                return EndTurn("error", completion.error or "empty completion", tuple(rejected))
            text = completion.texts[0].strip()
            if marker and marker in text:
                return EndTurn("user", rejected=tuple(rejected))
            reason = check_user_turn(text, history, detect_language(first_user), self.filters)
            if reason is None and self._check is not None:
                reason = self._check(text, list(messages)) or None
            if reason is None:
                asked = [*messages, {"role": "user", "content": text}]
                return UserTurn(text, self.reference(asked) if self.reference else None, tuple(rejected))
            rejected.append(reason)
        return EndTurn("filter", rejected[-1], tuple(rejected))


def _history(messages: list[Message]) -> Any:
    """``turnwise simulate``'s record of the dialogue's earlier turns, which its filters compare a draft with."""
    from turnwise.simulate.filters import TurnHistory

    history = TurnHistory()
    for message in messages:
        if message["role"] == "user":
            history.add_user(message["content"])
        elif message["role"] == "assistant":
            history.add_answer(message["content"])
    return history


class ReplayUser:
    """The prompt record's own later user turns, ``meta["future"]`` = ``[{"content", "reference"}, ...]``: the world
    that wrote the data asks its next questions, whose answers it knows, whatever the policy said."""

    name = "replay"

    async def next_turn(self, messages: list[Message], meta: dict[str, Any], turn: int) -> UserTurn | EndTurn:
        future = meta.get("future") or []
        if turn - 2 >= len(future):
            return EndTurn("user")
        step = future[turn - 2]
        return UserTurn(step["content"], step.get("reference"))


@dataclass
class Rollout:
    """One rollout: the dialogue after the prompt, who wrote each message, and each assistant turn's reward.

    Attributes:
        messages: the prompt, then the candidate answer, then the simulated turns.
        speakers: per message after the prompt: ``policy:candidate``, ``user:<simulator>`` (``user:replay``,
            ``user:ask:<model>``, ``user:prompted:<model>``), ``policy``.
        rewards: per assistant turn, r_k in [0, 1], or None when the scorer could not score it.
        references: per assistant turn, the reference it was scored against (None when there was none).
        prompt_length: messages of the prompt.
        reward: R, the discounted mean of the scored turns (0.0 when none was scored).
        ended_by: ``turns`` (K reached), ``user`` (the simulator ended it), ``filter`` (no draft of the simulator's
            passed its filters) or ``error`` (the policy or the simulator failed).
        end_reason: why, for ``filter`` and ``error``.
        rejected: the simulator's drafts regenerated, per filter reason.
    """

    messages: list[Message]
    speakers: list[str]
    rewards: list[float | None]
    references: list[str | None]
    prompt_length: int
    reward: float = 0.0
    ended_by: str = "turns"
    end_reason: str = ""
    rejected: Counter = field(default_factory=Counter)

    def to_record(self) -> dict[str, Any]:
        record = {"messages": self.messages, "speakers": self.speakers, "turn_rewards": self.rewards,
                  "references": self.references, "prompt_length": self.prompt_length, "reward": self.reward,
                  "ended_by": self.ended_by, "rejected_user_turns": dict(self.rejected)}
        if self.end_reason:
            record["end_reason"] = self.end_reason
        return record


def discounted_mean(rewards: list[float | None], discount: float) -> float:
    """Σ γ^(k−1) r_k / Σ γ^(k−1) over the scored turns (γ^0 = 1 also for γ = 0); 0.0 when none was scored."""
    weights = [(discount ** k if k else 1.0, r) for k, r in enumerate(rewards) if r is not None]
    total = sum(w for w, _ in weights)
    return sum(w * r for w, r in weights) / total if total else 0.0


async def turn_reward(scorer: Scorer, item_id: str, messages: list[Message], answer: str,
                      reference: str | None) -> float | None:
    """r in [0, 1] for ``answer`` to the last user turn of ``messages``, or None when the scorer could not."""
    meta = {"reference": reference} if reference is not None else {}
    batch = await scorer.score(ScoreInput.from_prompt(item_id, messages, meta), [answer])
    result = batch.results[0]
    return result.total / 10.0 if result.status == OK and result.total is not None else None


async def continue_dialogue(prompt: list[Message], answer: str, *, policy: ChatModel, user: UserSimulator,
                            scorer: Scorer, cfg: RolloutConfig, meta: dict[str, Any] | None = None,
                            item_id: str = "rollout") -> Rollout:
    """Score the candidate ``answer`` to ``prompt``, then play K − 1 more turns; see the module docstring.

    ``meta["reference"]`` is the candidate turn's reference; later turns take theirs from the simulator.
    """
    meta = meta or {}
    messages = [*prompt, {"role": "assistant", "content": answer}]
    rollout = Rollout(messages, ["policy:candidate"], [], [], len(prompt))
    reference = meta.get("reference")
    rollout.rewards.append(await turn_reward(scorer, item_id, prompt, answer, reference))
    rollout.references.append(reference)
    for turn in range(2, cfg.turns + 1):
        step = await user.next_turn(list(messages), meta, turn)
        rollout.rejected.update(step.rejected)
        if isinstance(step, EndTurn):
            rollout.ended_by, rollout.end_reason = step.by, step.reason
            break
        messages.append({"role": "user", "content": step.text})
        rollout.speakers.append(f"user:{user.name}")
        [completion] = await policy.chat([list(messages)], cfg.policy)
        if not completion.ok or not completion.texts:
            rollout.ended_by, rollout.end_reason = "error", f"turn {turn}: policy: {completion.error or 'empty'}"
            break
        reply = completion.texts[0]
        rollout.rewards.append(await turn_reward(scorer, f"{item_id}:{turn}", messages, reply, step.reference))
        rollout.references.append(step.reference)
        messages.append({"role": "assistant", "content": reply})
        rollout.speakers.append("policy")
    rollout.reward = discounted_mean(rollout.rewards, cfg.discount)
    return rollout
