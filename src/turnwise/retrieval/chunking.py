"""Split a text into chunks of a fixed number of tokens, cutting at token boundaries.

    chunks = chunk_text(document, 128)                       # built-in tokenizer: words and CJK characters
    chunks = chunk_text(document, 128, get_tokenizer("Qwen/Qwen2.5-0.5B-Instruct"))   # a model's own tokens

Chunks are slices of the original text (never decoded token ids, which can lose case, spaces or
characters), they tile it exactly, and each knows its token and character span, so that retrieved chunks
can be put back in document order.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Protocol

from turnwise.errors import ConfigError, require


@dataclass(frozen=True)
class Chunk:
    """One piece of a text.

    Attributes:
        index: position among the text's chunks (0-based).
        text: the slice of the original text.
        start: first token (0-based); ``end`` is one past the last.
        end: one past the last token.
        char_start: first character in the original text; ``char_end`` is one past the last.
        char_end: one past the last character.
        total_tokens: tokens in the whole text.
    """

    index: int
    text: str
    start: int
    end: int
    char_start: int
    char_end: int
    total_tokens: int

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "text": self.text, "start": self.start, "end": self.end,
                "char_start": self.char_start, "char_end": self.char_end, "total_tokens": self.total_tokens}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chunk:
        return cls(**data)


class Tokenizer(Protocol):
    """Anything that can give the character span of each token of a text."""

    name: str

    def spans(self, text: str) -> list[tuple[int, int]]: ...


_CJK_CLASS = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
_REGEX_TOKEN = re.compile(rf"[{_CJK_CLASS}]|[^\W{_CJK_CLASS}]+|[^\w\s]")


class RegexTokenizer:
    """A tokenizer with no dependency: a run of letters or digits, one CJK character, or one symbol each.

    It counts close to what subword tokenizers count for Chinese (about one token per character) and
    somewhat under for English (about 0.75 of a BPE count).
    """

    name = "regex"

    def spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _REGEX_TOKEN.finditer(text)]


class HFTokenizer:
    """A model's own tokenizer (transformers, fast tokenizers only), by hub id or local path."""

    def __init__(self, name: str):
        transformers = require("transformers", "local")
        self.name = name
        tokenizer = transformers.AutoTokenizer.from_pretrained(name)
        self._backend = getattr(tokenizer, "backend_tokenizer", None)
        if self._backend is None:
            raise ConfigError(f"tokenizer {name!r} is not a fast tokenizer; token offsets need one")

    def spans(self, text: str) -> list[tuple[int, int]]:
        # The backend tokenizer, not __call__: no special tokens and no "longer than max length" warning.
        return list(self._backend.encode(text, add_special_tokens=False).offsets)


@functools.lru_cache(maxsize=8)
def get_tokenizer(name: str | None = None) -> Tokenizer:
    """``None`` or ``regex``: :class:`RegexTokenizer`; anything else: that model's tokenizer."""
    if name in (None, "", "regex"):
        return RegexTokenizer()
    return HFTokenizer(name)


def count_tokens(text: str, tokenizer: Tokenizer | None = None) -> int:
    return len((tokenizer or RegexTokenizer()).spans(text))


def chunk_text(text: str, size: int, tokenizer: Tokenizer | None = None, *, overlap: int = 0) -> list[Chunk]:
    """Cut ``text`` into chunks of ``size`` tokens (the last one shorter), ``overlap`` tokens shared by neighbours.

    A chunk runs from its first token's first character to the next chunk's first character, so the
    chunks (without overlap) put back together are exactly the text, spaces and newlines included.

    Raises:
        ConfigError: ``size`` < 1, or ``overlap`` not in ``[0, size)``.
    """
    if size < 1:
        raise ConfigError(f"chunk size must be at least 1 token, got {size}")
    if not 0 <= overlap < size:
        raise ConfigError(f"chunk overlap must be in [0, {size}), got {overlap}")
    spans = (tokenizer or RegexTokenizer()).spans(text)
    total, step, chunks = len(spans), size - overlap, []
    for start in range(0, total, step):
        end = min(start + size, total)
        char_start = 0 if start == 0 else spans[start][0]
        char_end = spans[end][0] if end < total else len(text)
        chunks.append(Chunk(len(chunks), text[char_start:char_end], start, end, char_start, char_end, total))
        if end == total:
            break
    return chunks
