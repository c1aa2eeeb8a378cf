"""The one conversation schema, validated in one place.

A conversation is a list of OpenAI-style messages ``{"role": ..., "content": ...}``: an optional system
message first, then user and assistant turns alternating, starting with a user turn. It may end on a
user turn (waiting for an answer) or on an assistant turn.

``followups`` carries user turns that are still to be asked, in order (MT-Bench's second turn, an
N-turn evaluation script): whoever answers the conversation answers its last user turn, then each
follow-up in turn with its own answers in the history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from turnwise.errors import SchemaError

ROLES = ("system", "user", "assistant")

Message = dict[str, str]


def _check_message(i: int, message: Any) -> None:
    if not isinstance(message, dict):
        raise SchemaError(f"message {i} must be an object with 'role' and 'content', got {type(message).__name__}")
    for key in ("role", "content"):
        if key not in message:
            raise SchemaError(f"message {i} has no '{key}'")
    role, content = message["role"], message["content"]
    if role not in ROLES:
        raise SchemaError(f"message {i} has unknown role {role!r} (expected one of {', '.join(ROLES)})")
    if not isinstance(content, str):
        raise SchemaError(f"message {i} ({role}) content must be a string, got {type(content).__name__}")
    if not content.strip():
        raise SchemaError(f"message {i} ({role}) has empty content")


def validate_messages(messages: Any) -> None:
    """Check the schema rules; raise SchemaError naming the message and the rule broken."""
    if not isinstance(messages, list):
        raise SchemaError(f"messages must be a list, got {type(messages).__name__}")
    if not messages:
        raise SchemaError("conversation has no messages")
    for i, message in enumerate(messages):
        _check_message(i, message)
    start = 1 if messages[0]["role"] == "system" else 0
    if start == len(messages):
        raise SchemaError("conversation has only a system message")
    for i in range(start, len(messages)):
        role = messages[i]["role"]
        expected = "user" if (i - start) % 2 == 0 else "assistant"
        if role == "system":
            raise SchemaError(f"message {i} is a system message; only the first message may be one")
        if role != expected:
            previous = messages[i - 1]["role"] if i > start else None
            if previous == role:
                raise SchemaError(f"messages {i - 1} and {i} are two {role} turns in a row")
            raise SchemaError(f"message {i} should be a {expected} turn, got {role}")


def validate_followups(followups: Any) -> None:
    if not isinstance(followups, list):
        raise SchemaError(f"followups must be a list of strings, got {type(followups).__name__}")
    for i, turn in enumerate(followups):
        if not isinstance(turn, str):
            raise SchemaError(f"followup {i} must be a string, got {type(turn).__name__}")
        if not turn.strip():
            raise SchemaError(f"followup {i} is empty")


@dataclass
class Conversation:
    """A validated conversation with a stable id.

    Attributes:
        id: stable identifier, taken from the source record where it has one.
        messages: OpenAI-style messages, validated by :func:`validate_messages`.
        followups: user turns still to be asked after the last message, in order.
        meta: anything else worth keeping (category, source format, references).
    """

    id: str
    messages: list[Message]
    followups: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_messages(self.messages)
        validate_followups(self.followups)

    @property
    def system(self) -> str | None:
        return self.messages[0]["content"] if self.messages[0]["role"] == "system" else None

    @property
    def user_turns(self) -> list[str]:
        """Every user turn, asked and still to be asked."""
        asked = [m["content"] for m in self.messages if m["role"] == "user"]
        return asked + list(self.followups)


@dataclass
class PreferencePair:
    """A preference pair in TRL's conversational layout.

    Attributes:
        id: stable identifier.
        prompt: the history up to and including the user turn being answered.
        chosen: the preferred assistant answer.
        rejected: the dispreferred assistant answer.
        meta: strategy, scores, source ids.
    """

    id: str
    prompt: list[Message]
    chosen: str
    rejected: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_messages(self.prompt)
        if self.prompt[-1]["role"] != "user":
            raise SchemaError("prompt must end with a user turn")
        for name in ("chosen", "rejected"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise SchemaError(f"{name} must be a non-empty string")
