"""A scripted in-memory ChatModel for tests: no network, no weights, every call recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from turnwise.data.schema import Message
from turnwise.models.base import Completion, GenerationSettings, Usage

Reply = Callable[[list[Message]], str | None]


def echo_reply(messages: list[Message]) -> str:
    """Default reply: names the turn it answers, so tests can check which history the model saw."""
    return f"answer to: {messages[-1]['content']}"


class FakeChatModel:
    """Answers with ``reply(messages)``; a ``None`` reply becomes a failed completion.

    Attributes:
        seen: every conversation sent, in call order (copies).
        batches: the size of each ``chat`` call.
    """

    def __init__(self, reply: Reply = echo_reply, *, model: str = "fake", delay_s: float = 0.0):
        self.backend = "fake"
        self.model = model
        self.reply = reply
        self.delay_s = delay_s
        self.seen: list[list[Message]] = []
        self.batches: list[int] = []

    async def chat(self, conversations: Sequence[list[Message]], settings: GenerationSettings) -> list[Completion]:
        self.batches.append(len(conversations))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return [self._one(list(conv), settings) for conv in conversations]

    def _one(self, conv: list[Message], settings: GenerationSettings) -> Completion:
        self.seen.append([dict(m) for m in conv])
        text = self.reply(conv)
        if text is None:
            return Completion(error="scripted failure")
        texts = [text if i == 0 else f"{text} #{i}" for i in range(settings.n)]
        usage = Usage(sum(len(m["content"].split()) for m in conv), sum(len(t.split()) for t in texts))
        return Completion(texts=texts, finish_reasons=["stop"] * settings.n, usage=usage)

    async def aclose(self) -> None:
        return None


class EchoBackend(FakeChatModel):
    """The scripted model as a backend a spec names (``backend: turnwise.testing.fake:EchoBackend``), so a command
    and a recipe stage can run it in-process: it answers ``answer to: <last message>``, samples after the first
    differing by a suffix, and never fails.

    Attributes:
        sent: every conversation any EchoBackend was sent in this process, for tests that check what prompts say.

    Args:
        spec: the model spec; its ``model`` is the name in cache keys and manifests.
    """

    sent: list[list[Message]] = []  # noqa: RUF012 - one log for every instance, on purpose

    def __init__(self, spec: Any = None):
        super().__init__(model=spec.model if spec is not None else "echo")
        self.backend = "echo"
        self.seen = EchoBackend.sent
