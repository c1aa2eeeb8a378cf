"""Fit a conversation into a token budget by dropping its oldest whole user/assistant pairs.

    from turnwise.data.truncate import truncate_history
    kept, info = truncate_history(messages, count_tokens, budget=4096)
    if not info.fits:
        ...  # even the system message and the last turn alone are too long: filter the record

The system message and the last user turn (with its answer, when the conversation ends with one) are
always kept, and a message is never cut in the middle: a conversation that does not fit even with all its
history dropped is reported through ``info.fits``, for the caller to filter, never silently cut.
``count_tokens`` is the caller's, usually the length of the chat-template rendering, so the template's
own tokens count too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from turnwise.data.schema import Message, validate_messages

TokenCounter = Callable[[list[Message]], int]


@dataclass(frozen=True)
class TruncationInfo:
    """What truncation did, ready for a record's ``meta`` (``info.to_dict()``).

    Attributes:
        pairs_dropped: user/assistant pairs removed from the start of the history.
        tokens_before: tokens of the whole conversation.
        tokens_after: tokens of what is kept.
        fits: whether what is kept fits the budget; False when even the shortest form does not.
    """

    pairs_dropped: int
    tokens_before: int
    tokens_after: int
    fits: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def truncate_history(
    messages: list[Message], count_tokens: TokenCounter, budget: int
) -> tuple[list[Message], TruncationInfo]:
    """Drop the fewest oldest user/assistant pairs that bring the conversation within ``budget`` tokens.

    Args:
        messages: a valid conversation (see :func:`turnwise.data.schema.validate_messages`).
        count_tokens: the number of tokens of a list of messages.
        budget: the most tokens allowed.

    Returns:
        The kept messages (a new list; the input is not changed) and a :class:`TruncationInfo`. When
        nothing fits, the kept messages are the system message and the last turn, and ``fits`` is False.
    """
    validate_messages(messages)
    before = count_tokens(messages)
    if before <= budget:
        return list(messages), TruncationInfo(0, before, before, True)
    system, pairs, last = _split(messages)
    for dropped in range(1, len(pairs) + 1):
        kept = system + _flatten(pairs[dropped:]) + last
        tokens = count_tokens(kept)
        if tokens <= budget:
            return kept, TruncationInfo(dropped, before, tokens, True)
    kept = system + last
    tokens = before if not pairs else count_tokens(kept)
    return kept, TruncationInfo(len(pairs), before, tokens, False)


def _split(messages: list[Message]) -> tuple[list[Message], list[list[Message]], list[Message]]:
    """The system message (as a list, maybe empty), the history's pairs and the last turn."""
    start = 1 if messages[0]["role"] == "system" else 0
    body = messages[start:]
    last_len = 2 if body[-1]["role"] == "assistant" else 1
    history = body[:-last_len]
    pairs = [history[i : i + 2] for i in range(0, len(history), 2)]
    return messages[:start], pairs, body[-last_len:]


def _flatten(pairs: list[list[Message]]) -> list[Message]:
    return [message for pair in pairs for message in pair]
