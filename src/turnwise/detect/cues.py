"""Find the linguistic cues that a user turn leans on its history, in English and Chinese.

    find_cues("What about the other one?", ["Show me two phones.", "Here are two: ..."])
    # [Cue('additive', 'other'), Cue('one_anaphora', 'other one'), Cue('ellipsis', 'what about')]

Cues that point back: personal and demonstrative pronouns and possessives, one-anaphora ("that one"),
nominal ellipsis ("are there any on motors?"), ordinal references ("the first", 第二个), additive words
("else", "other", 别的), ellipsis ("what about 2020?", 呢-questions, 然后呢), fragments without a verb
("on what merits?"), definite references to something named earlier ("the museum") or presupposed by it
("the score"), a reduced name ("Joe" after "Joe Perry"), a Chinese turn that names nothing (pro-drop), and
very short turns. Cues that point the other way: a name in the turn (it carries its own topic) and a turn
that is only a reaction ("Thanks!", "That's great.", 好的). :mod:`turnwise.detect.rules` weighs them;
every cue found is kept as evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from turnwise.detect.text import language


@dataclass(frozen=True)
class Cue:
    """One piece of evidence: what kind of cue, and the words that showed it."""

    kind: str
    text: str


def find_cues(turn: str, history: Sequence[str], lang: str | None = None) -> list[Cue]:
    """Every cue in ``turn``, given the earlier messages' texts (both roles, oldest first)."""
    if (lang or language(turn)) == "zh":
        from turnwise.detect.cues_zh import cues_zh

        return cues_zh(turn, history)
    from turnwise.detect.cues_en import cues_en

    return cues_en(turn, history)
