"""English context-dependence cues, matched on words (``it`` is found in "is it new?", never in "item")."""

from __future__ import annotations

import functools
from collections.abc import Sequence

from turnwise.detect import lexicon as lx
from turnwise.detect.cues import Cue
from turnwise.detect.text import Token, tokenize_en, words

SENTENCE_END = frozenset(".?!")
SHORT_WORDS = 3  # "What time?", "Wake?", "One in Texas": too short to carry their own subject
FRAGMENT_WORDS = 4  # a question this short without an auxiliary is elliptical: "On what merits?"
ELLIPTICAL_AFTER = frozenset(["in", "of", "from", "about", "with", "on", "for"])


def cues_en(turn: str, history: Sequence[str]) -> list[Cue]:
    """Every cue of an English turn given the earlier messages' texts."""
    tokens = tokenize_en(turn)
    reaction = _reaction_clauses(tokens)
    found = [Cue("reaction", " ".join(tokens[i].text for i in span)) for span in reaction]
    in_reaction = {i for span in reaction for i in span}
    content = [t for i, t in enumerate(tokens) if not t.is_punct and i not in in_reaction]
    if all(t.low in lx.PHATIC_EN for t in content):
        return [*found, Cue("phatic", " ".join(t.text for t in words(tokens)))]
    found += [cue for i in range(len(tokens)) if i not in in_reaction and (cue := _token_cue(tokens, i))]
    found += _clause_cues(tokens)
    found += _name_cues(tokens, history)
    found += _definite_cues(tokens, history)
    return found


def _token_cue(tokens: list[Token], i: int) -> Cue | None:
    tok, prev, nxt = tokens[i], _at(tokens, i - 1), _at(tokens, i + 1)
    if tok.low in lx.PERSONAL_EN:
        if tok.low == "it" and nxt in ("seems", "seemed", "appears"):
            return None  # expletive "it seems that ..."
        return Cue("resolved_pronoun" if _names(tokens[:i]) else "personal_pronoun", tok.text)
    if tok.low in lx.DEMONSTRATIVE_EN:
        return _demonstrative(tok, prev, nxt)
    if tok.low in ("one", "ones"):
        return _one_anaphora(tok, prev, nxt, first=_starts_clause(tokens, i))
    if tok.low in lx.QUANTIFIERS_EN and (nxt is None or nxt in lx.PREPOSITIONS_EN or nxt in SENTENCE_END):
        return Cue("nominal_ellipsis", " ".join(t.text for t in tokens[i : i + 2]))
    if tok.low == "there" and not _existential_there(prev, nxt):
        return Cue("proform", tok.text)  # locative "there": "is it still raining there?"
    if tok.low in lx.ORDINAL_EN and nxt not in lx.TIME_NOUNS_EN and prev != "at":
        return Cue("ordinal_reference", tok.text)
    if tok.low in lx.ADDITIVE_EN:
        return Cue("additive", tok.text)
    if tok.low == "more" and (nxt is None or nxt in lx.MORE_FOLLOWERS_EN or not nxt.isalnum()):
        return Cue("additive", tok.text)
    return None


def _demonstrative(tok: Token, prev: str | None, nxt: str | None) -> Cue | None:
    if nxt in lx.TIME_NOUNS_EN:
        return None  # "this week": deixis in time, not a reference to the conversation
    if tok.low == "that" and (nxt in lx.SUBJECT_PRONOUNS_EN or nxt in lx.DETERMINERS_EN or prev in ("so", "such")):
        return None  # complementizer: "I heard that the ...", "so that"
    return Cue("demonstrative", tok.text)


def _one_anaphora(tok: Token, prev: str | None, nxt: str | None, *, first: bool) -> Cue | None:
    if first:  # an elliptical noun phrase opening the turn: "One in Texas", "Ones about dogs?"
        return Cue("one_anaphora", tok.text) if nxt in ELLIPTICAL_AFTER else None
    if tok.low == "ones" or (prev is not None and prev.isalpha() and prev not in lx.NOT_ONE_ANAPHORA_EN):
        return Cue("one_anaphora", f"{prev} {tok.text}")
    return None


def _existential_there(prev: str | None, nxt: str | None) -> bool:
    """"there is/are ...", "is there ...": existential, not a place."""
    be = {"is", "are", "was", "were", "'s", "be", "been", "will", "would", "could", "might", "may"}
    return nxt in be or prev in be or nxt in ("any", "anything", "a", "an", "no")


def _reaction_clauses(tokens: list[Token]) -> list[list[int]]:
    """Spans like "that's really cool" / "that would be great": a demonstrative judged, not asked about.

    A span is the demonstrative (or "it"), a linking verb, and an evaluative word within the next four
    tokens of the same clause; a clause that ends in a question mark is an inquiry, never a reaction.
    """
    spans = []
    for i, tok in enumerate(tokens):
        if tok.low not in ("that", "this", "it") or _at(tokens, i + 1) not in lx.LINKING_EN:
            continue
        end = _clause_end(tokens, i)
        if end < len(tokens) and tokens[end].text == "?":
            continue
        for j in range(i + 2, min(i + 6, end)):
            if tokens[j].low in lx.EVALUATIVE_EN:
                spans.append(list(range(i, j + 1)))
                break
    return spans


def _clause_cues(tokens: list[Token]) -> list[Cue]:
    """Ellipsis openers, verbless question fragments and very short turns."""
    found = []
    lows = [t.low for t in tokens if not t.is_punct and t.low not in lx.PHATIC_EN - {"so", "then"}]
    opener = next((" ".join(o) for o in lx.ELLIPSIS_OPENERS_EN if tuple(lows[: len(o)]) == o), None)
    if opener is None and lows and lows[0] in lx.CONJUNCTIONS_EN and tokens[-1].text == "?":
        opener = lows[0]  # "And the other one?", "Or in Paris?"
    if opener:
        found.append(Cue("ellipsis", opener))
    for clause in _question_clauses(tokens):
        content = [t for t in clause if t.low not in lx.PHATIC_EN]
        if 0 < len(content) <= FRAGMENT_WORDS and not any(t.low in lx.AUXILIARIES_EN for t in content):
            found.append(Cue("fragment", " ".join(t.text for t in content)))
    if 0 < len(words(tokens)) <= SHORT_WORDS:
        found.append(Cue("short_turn", " ".join(t.text for t in words(tokens))))
    return found


def _question_clauses(tokens: list[Token]) -> list[list[Token]]:
    """The words of each clause that ends in a question mark (a comma closes a clause too)."""
    clauses: list[list[Token]] = []
    current: list[Token] = []
    for tok in tokens:
        if not tok.is_punct:
            current.append(tok)
            continue
        if tok.text == "?" and current:
            clauses.append(current)
        current = []
    return clauses


def _name_cues(tokens: list[Token], history: Sequence[str]) -> list[Cue]:
    """A name in the turn carries its own topic, unless it shortens a longer name said earlier ("Joe")."""
    earlier = [_text_names(text) for text in history]
    longer = {word for spans in earlier for span in spans if len(span) > 1 for word in span}
    whole = {" ".join(span) for spans in earlier for span in spans}
    found = []
    for span in _names(tokens, spans=True):
        text = " ".join(span)
        kind = "partial_name" if text not in whole and all(w in longer for w in span) else "named_entity"
        found.append(Cue(kind, text))
    return found


def _names(tokens: list[Token], *, spans: bool = False) -> list:
    """Capitalised words that do not open a sentence and are not function words; ``spans`` groups runs."""
    runs: list[list[str]] = []
    last = -2
    for i, t in enumerate(tokens):
        if not (t.text[:1].isupper() and not _starts_clause(tokens, i) and t.low not in lx.FUNCTION_WORDS_EN
                and not t.text.isupper()):
            continue
        if i == last + 1:
            runs[-1].append(t.text)
        else:
            runs.append([t.text])
        last = i
    return runs if spans else [w for run in runs for w in run]


# An earlier turn is read again as the history of every later one: what the cues take from it is memoized.
@functools.lru_cache(maxsize=1024)
def _text_names(text: str) -> tuple[tuple[str, ...], ...]:
    """The runs of names in a history turn."""
    return tuple(tuple(span) for span in _names(tokenize_en(text), spans=True))


@functools.lru_cache(maxsize=1024)
def _text_vocab(text: str) -> frozenset[str]:
    """The singular forms of a history turn's words."""
    return frozenset(_singular(t.low) for t in tokenize_en(text))


def _definite_cues(tokens: list[Token], history: Sequence[str]) -> list[Cue]:
    """"the X" for an X named earlier, a relational X ("the score"), or an X that nothing restricts."""
    seen = set().union(*(_text_vocab(text) for text in history)) - lx.STOPWORDS_EN
    found = []
    for i, tok in enumerate(tokens):
        if tok.low != "the" or i + 1 >= len(tokens) or tokens[i + 1].is_punct or tokens[i + 1].text[:1].isupper():
            continue
        phrase = _noun_phrase(tokens, i + 1)
        text = "the " + " ".join(t.text for t in phrase)
        if any(_singular(t.low) in seen for t in phrase):
            found.append(Cue("definite_reference", text))
        elif _at(tokens, i + 1 + len(phrase)) in lx.RESTRICTORS_EN:
            continue  # "the celebration of tribes": the phrase says which one itself
        elif phrase[-1].low in lx.RELATIONAL_NOUNS_EN:
            found.append(Cue("bridging", text))
        else:
            found.append(Cue("definite_description", text))
    return found


def _noun_phrase(tokens: list[Token], start: int, most: int = 3) -> list[Token]:
    """Up to ``most`` words after a determiner, stopping at punctuation or a function word."""
    phrase = []
    for tok in tokens[start : start + most]:
        if tok.is_punct or (phrase and tok.low in lx.STOPWORDS_EN):
            break
        phrase.append(tok)
    return phrase


def _starts_clause(tokens: list[Token], i: int) -> bool:
    return i == 0 or tokens[i - 1].text in SENTENCE_END


def _clause_end(tokens: list[Token], i: int) -> int:
    return next((j for j in range(i, len(tokens)) if tokens[j].text in SENTENCE_END), len(tokens))


def _at(tokens: list[Token], i: int) -> str | None:
    return tokens[i].low if 0 <= i < len(tokens) else None


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word
