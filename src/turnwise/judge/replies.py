"""Replies a model must structure: the template's own text format, or JSON held to a schema by constrained decoding.

    RATING = rating_reply(0, 10)
    RATING("… Rating: [[7]]")                         # 7.0: the template's format, parsed strictly
    RATING.parse_json('{"analysis": "…", "rating": 7}')  # 7.0: the constrained reply, checked the same way

A :class:`Reply` is also a plain parse function (its text form), so every caller that parsed text still does. With
``structured`` on, the caller sends :attr:`Reply.schema` as the request's ``json_schema`` (a grammar on the local
backend, ``response_format`` on a server) and appends an instruction, from ``templates/judge/json.<lang>.jinja``,
that shows the model the object to write. The value read from the JSON passes the same checks as the text's: an
out-of-range rating or an unknown label is still a :class:`~turnwise.judge.parse.ParseError`, kept with the raw
reply, never coerced.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from turnwise.data.schema import Message
from turnwise.judge.parse import ParseError, parse_label, parse_rating, parse_tagged
from turnwise.models.base import schema_text

T = TypeVar("T")
ANALYSIS = {"type": "string", "maxLength": 400}  # a short reasoning first (a long one runs out of tokens)
# The first character of a value that is read (a rewrite, a statement, key points): a letter or digit of any of the
# scripts below. A small model copies the instruction's "..." placeholder; this keeps it from writing a value
# without a word in it. The rest excludes quotes, backslashes and line breaks: plain text, no escapes.
LETTERS = ("A-Za-z0-9\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff\u0590-\u06ff\u0900-\u097f"  # Latin Greek Cyrillic Hebrew
           "\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af")  # Arabic Devanagari, kana CJK Hangul


def room(max_tokens: int, overhead: int = 24) -> int:
    """Characters of text values that fit in a reply of ``max_tokens`` beside the JSON around them, at a cautious
    three characters a token (English prose runs about four; digits and repeated text fewer)."""
    return max(40, 3 * (max_tokens - overhead))


def words(longest: int, ends: str = "") -> dict[str, Any]:
    """The JSON schema of a text value that is read: it starts with a letter or digit, at most ``longest``
    characters, on one line (a pattern, so that constrained decoders bound the length: minLength and maxLength
    do not combine with a pattern everywhere). With ``ends`` (such as ``"?？"``), those characters may only close
    the value: one question, where a small model left to itself runs on with more."""
    tail = f"[{ends}]?" if ends else ""
    return {"type": "string", "pattern": f"[{LETTERS}]" + r'[^"\\\r\n' + ends + "]" + f"{{0,{longest - 1}}}" + tail}


@dataclass(frozen=True)
class Reply(Generic[T]):
    """How one kind of reply is read.

    Attributes:
        text: reads the template's own text format (raises ParseError).
        schema: the JSON schema of the structured reply.
        read: reads the JSON object (raises ParseError).
        example: the object shown to the model, in the instruction that asks for JSON.
    """

    text: Callable[[str], T]
    schema: dict[str, Any]
    read: Callable[[dict[str, Any]], T]
    example: str
    schema_text: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "schema_text", schema_text(self.schema))

    def __call__(self, text: str) -> T:
        return self.text(text)

    def parse_json(self, text: str) -> T:
        """The value of a structured reply.

        Raises:
            ParseError: not one JSON object, or a value the text form would refuse too.
        """
        try:
            value = json.loads(text)
        except ValueError:
            raise ParseError("the reply is not one JSON object (cut off at max_tokens?)") from None
        if not isinstance(value, dict):
            raise ParseError("the reply is JSON but not an object")
        return self.read(value)


def json_object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def _text_field(value: dict[str, Any], key: str) -> str:
    if not isinstance(value.get(key), str):
        raise ParseError(f"the JSON reply has no string {key!r}")
    return value[key]


def rating_reply(low: float = 0.0, high: float = 10.0) -> Reply[float]:
    """A rating in ``[low, high]``: ``[[x]]`` in text, ``{"analysis", "rating"}`` as JSON."""

    def read(value: dict[str, Any]) -> float:
        rating = value.get("rating")
        if isinstance(rating, bool) or not isinstance(rating, int | float):
            raise ParseError("the JSON reply has no number 'rating'")
        if not low <= rating <= high:
            raise ParseError(f"rating {rating} is outside {low:g}–{high:g}")
        return float(rating)

    rating = {"type": "integer", "minimum": int(low), "maximum": int(high)}
    schema = json_object({"analysis": ANALYSIS, "rating": rating})
    return Reply(lambda text: parse_rating(text, low, high), schema, read,
                 f'{{"analysis": "...", "rating": {int(low)}-{int(high)}}}')


def label_reply(labels: Mapping[str, float], shown: Sequence[str] | None = None) -> Reply[tuple[str, float]]:
    """One of ``labels``: ``[[label]]`` in text, ``{"analysis", "verdict"}`` as JSON (the verdict one of ``shown``,
    default every label)."""
    choices = list(shown or labels)

    def read(value: dict[str, Any]) -> tuple[str, float]:
        return parse_label(f"[[{_text_field(value, 'verdict')}]]", labels)

    schema = json_object({"analysis": ANALYSIS, "verdict": {"type": "string", "enum": choices}})
    return Reply(lambda text: parse_label(text, labels), schema, read,
                 '{"analysis": "...", "verdict": ' + " | ".join(json.dumps(c, ensure_ascii=False) for c in choices)
                 + "}")


def list_reply(tag: str, key: str, *, none_marker: str | None = None, most: int = 10, longest: int = 240,
               max_tokens: int | None = None) -> Reply[list[str]]:
    """Items: ``<tag>…</tag>`` in text, ``{key: [...]}`` as JSON (an empty list only where ``none_marker`` makes
    none a valid answer). With ``max_tokens``, fewer or shorter items, so that a full list still fits the reply
    (at least 100 characters an item while there is room for one)."""
    if max_tokens is not None:
        budget = room(max_tokens)
        most = max(1, min(most, budget // 100))
        longest = max(40, min(longest, budget // most))

    def read(value: dict[str, Any]) -> list[str]:
        items = value.get(key)
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ParseError(f"the JSON reply has no list of strings {key!r}")
        items = [i.strip() for i in items if i.strip()]
        if not items and none_marker is None:
            raise ParseError(f"the JSON reply lists no {key}")
        return items

    schema = json_object({key: {"type": "array", "items": words(longest), "maxItems": most}})  # bounded: the
    # object must fit max_tokens
    return Reply(lambda text: parse_tagged(text, tag, none_marker=none_marker), schema, read,
                 f'{{"{key}": ["...", "..."]}}')


def structured_messages(messages: list[Message], reply: Reply[Any], lang: str, search_path: Sequence[str] = ()
                        ) -> list[Message]:
    """``messages`` with the instruction to answer as ``reply``'s JSON appended to the last one."""
    from turnwise.prompts import render

    instruction = render("judge/json", lang, search_path=search_path, example=reply.example)
    last = messages[-1]
    return [*messages[:-1], {**last, "content": f"{last['content']}\n\n{instruction}"}]
