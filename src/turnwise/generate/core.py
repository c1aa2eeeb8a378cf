"""Answer conversations with a model, turn by turn: the simplest stage, and the engine others reuse.

    turnwise generate conversations.jsonl answers.jsonl --model ./tiny --max-tokens 64

Each conversation is answered on its own async loop: its last user turn first, then every follow-up
(MT-Bench's second turn, an N-turn script) with the model's own earlier answers in the history.
Each finished conversation becomes one record; a failed call becomes a ``failed`` record that keeps
the turns answered so far and the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from turnwise.data.schema import Conversation, Message
from turnwise.errors import ConfigError
from turnwise.models.base import ChatModel, GenerationSettings
from turnwise.records import RecordStore, make_record
from turnwise.stage.runner import Cost, run_bounded, unfinished


@dataclass
class GenerateResult:
    """Totals of one run of the stage (this run only; resumed records are counted by the store)."""

    cost: Cost = field(default_factory=Cost)
    records: int = 0


async def answer_conversation(conv: Conversation, model: ChatModel, settings: GenerationSettings) -> dict[str, Any]:
    """Answer the last user turn and then each follow-up; return the stage record."""
    messages: list[Message] = [dict(m) for m in conv.messages]
    to_ask = list(conv.followups)
    if messages[-1]["role"] == "assistant":
        if not to_ask:
            return _record(conv, "filtered", messages, Cost(), model, reason="ends with an assistant turn")
        messages.append({"role": "user", "content": to_ask.pop(0)})
    cost = Cost()
    samples: list[str] = []
    while True:
        [completion] = await model.chat([messages], settings)
        cost.add(completion)
        if not completion.ok or not completion.texts[0].strip():
            reason = completion.error or "empty completion"
            return _record(conv, "failed", messages, cost, model, reason=f"turn {len(messages) - 1}: {reason}")
        samples = completion.texts
        messages.append({"role": "assistant", "content": completion.texts[0]})
        if not to_ask:
            break
        messages.append({"role": "user", "content": to_ask.pop(0)})
    extra = {"samples": samples} if settings.n > 1 else {}
    return _record(conv, "ok", messages, cost, model, **extra)


def _record(conv: Conversation, status: str, messages: list[Message], cost: Cost, model: ChatModel,
            reason: str | None = None, **extra: Any) -> dict[str, Any]:
    meta = {**conv.meta, "model": {"backend": model.backend, "model": model.model}, "cost": cost.to_dict()}
    return make_record(conv.id, status, {"messages": messages, **extra}, reason=reason, meta=meta)


async def run_generate(
    conversations: Iterable[Conversation],
    model: ChatModel,
    store: RecordStore,
    settings: GenerationSettings,
    *,
    max_in_flight: int = 256,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> GenerateResult:
    """Answer every conversation not yet in ``store``; each record is written as soon as it is done.

    Args:
        conversations: the input stream; ids must be unique.
        model: any ChatModel (wrap it in CachedChatModel to make re-runs free).
        store: the resumable output; finished ids are skipped.
        settings: generation settings; ``n > 1`` keeps all samples of a single-turn answer.
        max_in_flight: conversations being answered at once (the backend bounds its own requests).
        on_record: called with each record written (progress bars).
    """
    result = GenerateResult()

    def checked() -> Iterable[Conversation]:
        for conv in conversations:
            if conv.followups and settings.n > 1:
                raise ConfigError("n > 1 samples only single-turn answers; conversations with follow-ups need n = 1")
            yield conv

    async def work(conv: Conversation) -> None:
        record = await answer_conversation(conv, model, settings)
        store.append(record)
        result.records += 1
        result.cost += Cost(**record["meta"]["cost"])
        if on_record is not None:
            on_record(record)

    await run_bounded(unfinished(checked(), store.done), work, max_in_flight)
    return result
