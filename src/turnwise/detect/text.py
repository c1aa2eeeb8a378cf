"""Words, not substrings: English tokens and Chinese segmentation for the context-dependence cues.

English is split on word boundaries, with clitics apart (``it's`` → ``it``, ``'s``), so "it" is found in
"is it new?" and never in "item". Chinese is segmented with jieba's part-of-speech tagger, so 其他 is
one word (never 其), 应该 is one word (never 该), and cues can look at a word's neighbour's tag.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass

from turnwise.errors import require

log = logging.getLogger(__name__)

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")
_EN_TOKEN = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)*|['’][A-Za-z]+|[?!.,;:]")
_PUNCT = set("?!.,;:？！。，；：、…~～\"'“”‘’()（）")


@dataclass(frozen=True)
class Token:
    """One word of a turn.

    Attributes:
        text: the word as written (case kept: capitals tell names apart).
        low: lower-cased text, what the lexicons are matched against.
        tag: jieba's part-of-speech flag for Chinese (``r`` pronoun, ``n`` noun, ``v`` verb ...); ``""`` for
            English words and ``x`` for punctuation.
    """

    text: str
    low: str
    tag: str = ""

    @property
    def is_punct(self) -> bool:
        if self.tag == "x":
            return True
        return not self.text[:1].isalnum() and all(ch in _PUNCT or ch.isspace() for ch in self.text)


def language(text: str) -> str:
    """``zh`` when the text has Chinese characters and at most 4 Latin letters per one of them, else ``en``.

    The ratio is the one the judge prompts use: a Chinese question naming an English term is still Chinese.
    """
    cjk = len(_CJK.findall(text))
    return "zh" if cjk and len(_LATIN.findall(text)) <= 4 * cjk else "en"


def tokenize_en(text: str) -> list[Token]:
    """English words and sentence punctuation; a clitic (``'s``, ``'t``, ``'re``) is its own token.

    Memoized (tokens are immutable; each call gets its own list): a dialogue's earlier turns are read again as
    the history of every later one.
    """
    return list(_tokenize_en(text))


@functools.lru_cache(maxsize=1024)
def _tokenize_en(text: str) -> tuple[Token, ...]:
    tokens: list[Token] = []
    for match in _EN_TOKEN.finditer(text):
        word = match.group().replace("’", "'")
        head, *clitics = word.split("'")
        if head:
            tokens.append(Token(head, head.lower(), "x" if head in _PUNCT else ""))
        tokens.extend(Token("'" + c, "'" + c.lower()) for c in clitics if c)
    return tuple(tokens)


@functools.lru_cache(maxsize=1)
def _posseg():  # jieba.posseg, imported on first use
    jieba = require("jieba", "zh")
    jieba.setLogLevel(logging.WARNING)  # jieba logs its dictionary loading at INFO on its own handler
    import jieba.posseg as posseg

    return posseg


def tokenize_zh(text: str) -> list[Token]:
    """Chinese words with jieba's part-of-speech tags; spaces dropped, Latin words kept whole."""
    return [Token(w.word, w.word.lower(), w.flag) for w in _posseg().lcut(text) if w.word.strip()]


def tokenize(text: str, lang: str | None = None) -> list[Token]:
    """Words of ``text`` in its language (detected when ``lang`` is None)."""
    return tokenize_zh(text) if (lang or language(text)) == "zh" else tokenize_en(text)


def words(tokens: list[Token]) -> list[Token]:
    """The tokens that are words (punctuation left out)."""
    return [t for t in tokens if not t.is_punct]


def cjk_chars(text: str) -> int:
    """Chinese characters in ``text`` (the length of a Chinese turn, punctuation not counted)."""
    return len(_CJK.findall(text))
