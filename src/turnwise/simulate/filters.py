"""Filters on simulated user turns: small pure functions, each returning a reason or None.

A rejected user turn is generated again (with another sampling seed) up to K times; the reasons are
counted per dialogue (``meta.filters``) and over the run (the manifest). The reasons, in the order the
checks run:

=================  =====================================================================================
``failed``         the call failed (after the backend's own retries)
``empty``          the completion is empty or only whitespace
``too_short``      fewer than ``min_chars`` non-space characters
``role_label``     the turn writes role labels ("User:", "Assistant:", "用户：") — a simulator playing both
``answer``         the turn answers instead of asking: an assistant's phrasing ("Certainly!", "As an AI"),
                   or a near copy of an earlier assistant answer
``repeated``       the same as an earlier user turn (case, spacing and punctuation ignored)
``near_duplicate`` Jaccard similarity to an earlier user turn at or above ``near_duplicate``
``sensitive``      contains a term from the configured list
``language``       written in another language (script) than the seed
=================  =====================================================================================
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from turnwise.errors import ConfigError

REASONS = (
    "failed", "empty", "too_short", "role_label", "answer", "repeated", "near_duplicate", "sensitive", "language",
)
# Reasons a caller may switch off; a failed or empty generation is never a user turn.
OPTIONAL_REASONS = REASONS[2:]

_ROLE_LABEL = re.compile(
    r"(?im)^\s*(?:user|assistant|human|ai|bot|gpt|chatgpt|system)\s*[:：]"
    r"|\b(?:User|USER|Assistant|ASSISTANT|Human|HUMAN)\s*:"
    r"|(?:用户|助手|助理|人类)\s*[:：]"
)
# How assistants open or close an answer; a user who writes this is answering, not asking.
_ANSWER_PHRASES = re.compile(
    r"^\W*(?:certainly|sure[!,.]|of course[!,.]|absolutely[!,.]|great question|good question"
    r"|as an ai\b|as a language model|i'?m sorry, but|i am sorry, but|i apologi[sz]e"
    r"|当然可以|作为一个?(?:人工智能|ai|语言模型)|这是一个很好的问题)"
    r"|\b(?:i hope this helps|let me know if you have any (?:other|more|further) questions"
    r"|as an ai (?:language )?model)\b|希望(?:这|以上)(?:对你|能)有(?:所)?帮助",
    re.IGNORECASE,
)
_NON_WORD = re.compile(r"[\W_]+")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[^\W\d_]+|\d+", re.UNICODE)
_SCRIPTS = (("ja", re.compile(r"[\u3040-\u30ff]")), ("ko", re.compile(r"[\uac00-\ud7af]")),
            ("ru", re.compile(r"[\u0400-\u04ff]")), ("ar", re.compile(r"[\u0600-\u06ff]")))
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")


@dataclass
class FilterConfig:
    """Settings of the user-turn filters.

    Attributes:
        min_chars: a user turn with fewer non-space characters is ``too_short``.
        near_duplicate: Jaccard similarity (words; character bigrams for Chinese) at or above which a user
            turn is a near-duplicate of an earlier user turn, or a copy of an earlier assistant answer.
        sensitive_terms: terms that reject a user turn (case-insensitive; whole words for Latin script); an entry
            ``@FILE`` stands for the terms of a file, one per line.
        disabled: reasons not checked (any of ``too_short``, ``role_label``, ``answer``, ``repeated``,
            ``near_duplicate``, ``sensitive``, ``language``).
        check: a filter of your own, ``module:function``, called as ``function(text, messages)`` on each user turn
            the built-in filters keep (``messages``: the dialogue so far); a string it returns rejects the turn,
            with that reason (an off-topic or out-of-domain question), None keeps it.
    """

    min_chars: int = 3
    near_duplicate: float = 0.8
    sensitive_terms: Sequence[str] = ()
    disabled: Sequence[str] = field(default=(), metadata={"cli": "--disable-filter"})
    check: str | None = field(default=None, metadata={"cli": "--filter-check"})
    _sensitive: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = set(self.disabled) - set(OPTIONAL_REASONS)
        if unknown:
            raise ConfigError(f"cannot disable {sorted(unknown)}; filters: {', '.join(OPTIONAL_REASONS)}")
        if not 0.0 < self.near_duplicate <= 1.0:
            raise ConfigError(f"near_duplicate must be in (0, 1], got {self.near_duplicate}")
        self._sensitive = sensitive_pattern(read_terms(self.sensitive_terms))

    def on(self, reason: str) -> bool:
        return reason not in self.disabled


def normalize(text: str) -> str:
    """Lower case, NFKC, punctuation dropped, spaces collapsed: what "the same question" compares."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def shingles(text: str) -> set[str]:
    """Words of Latin-script text and character bigrams of Chinese, for Jaccard similarity."""
    return _units(normalize(text))


def _units(normalized: str) -> set[str]:
    units: set[str] = set()
    for word in _WORD.findall(normalized):
        if len(word) > 1 and _CJK.search(word):
            units.update(word[i : i + 2] for i in range(len(word) - 1))
        else:
            units.add(word)
    return units


@dataclass
class TurnHistory:
    """What a new user turn is compared with: each earlier turn normalized once (not once per check), and only
    when a filter asks (with the filters off, nothing is computed).

    Attributes:
        users: earlier user turns (the seed first), as said.
        answers: earlier assistant answers, as said.
    """

    users: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    _asked: set[str] = field(default_factory=set, repr=False)
    _asked_units: list[set[str]] = field(default_factory=list, repr=False)
    _answer_units: list[set[str]] = field(default_factory=list, repr=False)

    def add_user(self, text: str) -> None:
        self.users.append(text)

    def add_answer(self, text: str) -> None:
        self.answers.append(text)

    def _catch_up_users(self) -> None:
        for text in self.users[len(self._asked_units):]:
            key = normalize(text)
            self._asked.add(key)
            self._asked_units.append(_units(key))

    @property
    def asked(self) -> set[str]:
        """The earlier user turns, normalized."""
        self._catch_up_users()
        return self._asked

    @property
    def asked_units(self) -> list[set[str]]:
        """Their shingles."""
        self._catch_up_users()
        return self._asked_units

    @property
    def answer_units(self) -> list[set[str]]:
        """Shingles of the earlier assistant answers."""
        self._answer_units += [shingles(text) for text in self.answers[len(self._answer_units):]]
        return self._answer_units


def jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def detect_language(text: str) -> str | None:
    """The script a text is written in: ``zh``, ``ja``, ``ko``, ``ru``, ``ar``, ``en`` (any Latin script).

    None when the text has too few letters to tell (numbers, code, "?"). A CJK character counts as much
    as three Latin letters, so "Python 里的 list 是什么" is ``zh`` and "What does 小明 like?" is ``en``.
    """
    for lang, pattern in _SCRIPTS:
        if len(pattern.findall(text)) >= 2:
            return lang
    cjk, latin = len(_CJK.findall(text)), len(_LATIN.findall(text))
    if cjk == 0 and latin < 2:
        return None
    return "zh" if 3 * cjk >= latin else "en"


def read_terms(entries: Sequence[str]) -> list[str]:
    """The terms of ``entries``, each ``@FILE`` replaced by the lines of that file.

    Raises:
        ConfigError: a named file cannot be read.
    """
    terms: list[str] = []
    for entry in entries:
        if not entry.startswith("@"):
            terms.append(entry)
            continue
        try:
            text = Path(entry[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"sensitive_terms: cannot read {entry[1:]}: {exc.strerror or exc}") from None
        terms += [line.strip() for line in text.splitlines() if line.strip()]
    return terms


def sensitive_pattern(terms: Sequence[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern for a list of terms (whole words for Latin-script terms)."""
    parts = []
    for term in (t.strip() for t in terms):
        if not term:
            continue
        escaped = re.escape(term)
        parts.append(escaped if _CJK.search(term) else rf"\b{escaped}\b")
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


def too_short(text: str, min_chars: int) -> str | None:
    return "too_short" if len("".join(text.split())) < min_chars else None


def role_label(text: str) -> str | None:
    return "role_label" if _ROLE_LABEL.search(text) else None


def answers_instead_of_asking(text: str, history: TurnHistory, threshold: float) -> str | None:
    """An assistant's phrasing, or a near copy of an earlier assistant answer."""
    if _ANSWER_PHRASES.search(text):
        return "answer"
    units = shingles(text)
    return "answer" if any(jaccard(units, a) >= threshold for a in history.answer_units) else None


def repeated(text: str, history: TurnHistory) -> str | None:
    """The same as an earlier user turn once case, spacing and punctuation are ignored."""
    return "repeated" if normalize(text) in history.asked else None


def near_duplicate(text: str, history: TurnHistory, threshold: float) -> str | None:
    """At or above ``threshold`` Jaccard similarity to an earlier user turn."""
    units = shingles(text)
    return "near_duplicate" if any(jaccard(units, q) >= threshold for q in history.asked_units) else None


def sensitive(text: str, pattern: re.Pattern[str] | None) -> str | None:
    return "sensitive" if pattern is not None and pattern.search(text) else None


def language_mismatch(text: str, seed_lang: str | None) -> str | None:
    """``language`` when both the seed's and the turn's scripts are known and differ."""
    lang = detect_language(text)
    return "language" if seed_lang and lang and lang != seed_lang else None


def check_user_turn(text: str, history: TurnHistory, seed_lang: str | None, config: FilterConfig) -> str | None:
    """Run every enabled filter on a simulated user turn; the first reason found, or None to keep it.

    Args:
        text: the simulated user turn.
        history: the dialogue's earlier user turns and answers.
        seed_lang: :func:`detect_language` of the seed.
        config: the filter settings.
    """
    if not text.strip():
        return "empty"
    checks = (
        ("too_short", lambda: too_short(text, config.min_chars)),
        ("role_label", lambda: role_label(text)),
        ("answer", lambda: answers_instead_of_asking(text, history, config.near_duplicate)),
        ("repeated", lambda: repeated(text, history)),
        ("near_duplicate", lambda: near_duplicate(text, history, config.near_duplicate)),
        ("sensitive", lambda: sensitive(text, config._sensitive)),
        ("language", lambda: language_mismatch(text, seed_lang)),
    )
    for name, check in checks:
        if config.on(name) and (reason := check()):
            return reason
    return None
