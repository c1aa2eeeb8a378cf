"""Chinese context-dependence cues, matched on jieba's words: 其他 is one word (never 其), 应该 one word
(never 该), and 继续 counts only when its object is left out (继续说, not 继续教育)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from turnwise.detect import lexicon as lx
from turnwise.detect.cues import Cue
from turnwise.detect.text import Token, cjk_chars, tokenize_zh, words

SHORT_CHARS = 4  # 为什么, 好看吗, 是什么
_ORDINAL = re.compile(r"^第[一二三四五六七八九十百\d]+")


def cues_zh(turn: str, history: Sequence[str]) -> list[Cue]:
    """Every cue of a Chinese turn (the history is not consulted: Chinese cues are in the turn itself)."""
    del history
    tokens = words(tokenize_zh(turn))
    if tokens and all(t.low in lx.PHATIC_ZH for t in tokens):
        return [Cue("phatic", "".join(t.text for t in tokens))]
    found = [cue for i in range(len(tokens)) if (cue := _token_cue(tokens, i))]
    if 0 < cjk_chars(turn) <= SHORT_CHARS:
        found.append(Cue("short_turn", "".join(t.text for t in tokens)))
    if not any(_is_nominal(t) for t in tokens):
        found.append(Cue("zero_anaphora", "".join(t.text for t in tokens)))  # names nothing: pro-drop
    found += [Cue("named_entity", t.text) for t in tokens if t.tag in lx.NAME_TAGS_ZH]
    return found


def _token_cue(tokens: list[Token], i: int) -> Cue | None:
    tok, nxt = tokens[i], tokens[i + 1] if i + 1 < len(tokens) else None
    if tok.text in lx.PERSONAL_ZH:
        return Cue("personal_pronoun", tok.text)
    if _is_demonstrative(tok, nxt):
        return Cue("demonstrative", tok.text + (nxt.text if nxt and tok.text in lx.DETERMINER_BEFORE_NOUN_ZH else ""))
    if tok.text == "呢" and all(t.text in lx.FINAL_PARTICLES_ZH for t in tokens[i + 1 :]):
        return Cue("ellipsis", "".join(t.text for t in tokens[max(0, i - 2) : i + 1]))
    if tok.text in lx.CONTINUE_ZH and (nxt is None or nxt.text in lx.SPEECH_VERBS_ZH | lx.FINAL_PARTICLES_ZH):
        return Cue("ellipsis", tok.text + (nxt.text if nxt else ""))
    if tok.text in lx.ADDITIVE_ZH:
        return Cue("additive", tok.text)
    if _is_ordinal(tok, nxt):
        return Cue("ordinal_reference", tok.text + (nxt.text if nxt and nxt.tag == "m" else ""))
    return None


def _is_demonstrative(tok: Token, nxt: Token | None) -> bool:
    if tok.text in lx.DETERMINER_BEFORE_NOUN_ZH:
        return nxt is not None and nxt.tag.startswith("n")  # 该公司, not 该怎么办
    if tok.text in lx.NOT_DEMONSTRATIVE_ZH:
        return False
    # 这部, 那首, 这家: a demonstrative fused with its classifier, tagged as a pronoun by jieba.
    return tok.text in lx.DEMONSTRATIVE_ZH or (tok.tag == "r" and tok.text[0] in "这那" and len(tok.text) == 2)


def _is_ordinal(tok: Token, nxt: Token | None) -> bool:
    if tok.text in lx.ORDINAL_ZH or _ORDINAL.match(tok.text):
        return True
    return tok.text in lx.ORDINAL_BEFORE_NUMERAL_ZH and nxt is not None and nxt.tag == "m" and nxt.text[0] == "一"


def _is_nominal(tok: Token) -> bool:
    """Nouns, names, Latin words and third-person pronouns: what gives a turn its own topic."""
    return tok.tag.startswith("n") or tok.tag == "eng" or tok.text in lx.PERSONAL_ZH
