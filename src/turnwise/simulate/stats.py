"""Statistics of a simulation run, to set beside Parrot's data-set table (arXiv 2310.07301).

Parrot reports turns per dialogue (about 8.7 for its self-play data) and context-dependent user turns
per dialogue (about 3.4, against 1.45 for UltraChat). :func:`summarize` computes the same from the
output records, streamed, so it covers every run of a resumed output and holds one record at a time.

Context dependence is judged by :func:`turnwise.detect.detect_messages` (the cue rules of the CaPO
detector: pronouns, ellipsis, ordinals, definite references, in English and Chinese, on words) where it
can run; where it cannot (the module is missing, or a Chinese turn without jieba, the ``zh`` extra), by
the simple pronoun/demonstrative count :func:`is_context_dependent`. The manifest says which judged how
many dialogues. :func:`count_dependent` is the one place to change that choice.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from turnwise.errors import TurnwiseError

DETECTOR = "turnwise.detect.detect_messages"
FALLBACK = "pronoun count (turnwise.simulate.stats.is_context_dependent)"

_EN_CUES = re.compile(
    r"\b(?:it|its|itself|this|that|these|those|they|them|their|he|him|his|she|her|above|previous|former"
    r"|latter|aforementioned|same|earlier|what about|how about|the (?:first|second|third|last|other) one)\b",
    re.IGNORECASE,
)
# 这/那 alone cover 这个, 那些, 这样...; substrings, unlike turnwise.detect's segmented words.
_ZH_CUES = re.compile(r"它们?|他们?|她们?|[这那][个些样里种]?|上面|上述|前面|刚才|之前|其中|后者|前者")


def context_cues(text: str) -> list[str]:
    """Pronouns and demonstratives in a user turn (English words, Chinese substrings), in order."""
    return [m.group().lower() for m in _EN_CUES.finditer(text)] + _ZH_CUES.findall(text)


def is_context_dependent(text: str) -> bool:
    """Whether a user turn holds a pronoun or demonstrative: the fallback when turnwise.detect cannot run."""
    return bool(context_cues(text))


def count_dependent(messages: list[dict[str, str]]) -> tuple[int, str]:
    """How many user turns after the first lean on their history, and which detector said so."""
    try:
        from turnwise.detect import detect_messages

        return sum(d.dependent for d in detect_messages(messages)), DETECTOR
    except (ImportError, TurnwiseError):  # no detect module, or a Chinese turn without jieba
        users = [m["content"] for m in messages if m["role"] == "user"][1:]
        return sum(is_context_dependent(text) for text in users), FALLBACK


@dataclass
class SimulationStats:
    """Counts over output records; :meth:`to_dict` is what the manifest's ``stats`` holds.

    Turns, user turns and cues count the ``ok`` dialogues (the data set); statuses, endings and filter
    rejections count every record.
    """

    dialogues: int = 0
    status: Counter[str] = field(default_factory=Counter)
    finished_by: Counter[str] = field(default_factory=Counter)
    turns: Counter[int] = field(default_factory=Counter)
    filters: Counter[str] = field(default_factory=Counter)
    user_turns: int = 0
    user_chars: int = 0
    dependent_turns: int = 0
    detectors: Counter[str] = field(default_factory=Counter)

    def add(self, record: dict[str, Any], dependent: tuple[int, str] | None = None) -> None:
        """Count ``record``; ``dependent`` is its :func:`count_dependent`, when already known."""
        meta = record.get("meta", {})
        self.dialogues += 1
        self.status[record["status"]] += 1
        self.finished_by[meta.get("finished_by", "?")] += 1
        self.filters.update(meta.get("filters", {}))
        if record["status"] != "ok":
            return
        self.turns[meta.get("turns", 0)] += 1
        # The first user turn is the seed: only the simulated ones can depend on the history.
        simulated = [m["content"] for m in record["messages"] if m["role"] == "user"][1:]
        self.user_turns += len(simulated)
        self.user_chars += sum(len(text) for text in simulated)
        dependent_turns, detector = dependent or count_dependent(record["messages"])
        self.dependent_turns += dependent_turns
        self.detectors[detector] += 1

    def to_dict(self) -> dict[str, Any]:
        kept = sum(self.turns.values())
        return {
            "dialogues": self.dialogues,
            "status": dict(self.status),
            "finished_by": dict(self.finished_by.most_common()),
            "turns_per_dialogue": _ratio(sum(k * n for k, n in self.turns.items()), kept),
            "turns_histogram": {str(k): self.turns[k] for k in sorted(self.turns)},
            "simulated_user_turns": self.user_turns,
            "mean_user_turn_chars": _ratio(self.user_chars, self.user_turns),
            "context_dependent": {
                "turns": self.dependent_turns,
                "share_of_simulated_user_turns": _ratio(self.dependent_turns, self.user_turns),
                "per_dialogue": _ratio(self.dependent_turns, kept),
                "detector": dict(self.detectors),
            },
            "filters": dict(self.filters.most_common()),
            "regenerations": sum(self.filters.values()),
        }

    def summary(self) -> str:
        """One line: ``400 dialogues: 396 ok; 7.9 turns each; 41% of user turns context-dependent; ...``."""
        data = self.to_dict()
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(self.status.items()))
        filters = ", ".join(f"{n} {r}" for r, n in self.filters.most_common(4)) or "none"
        share = data["context_dependent"]["share_of_simulated_user_turns"]
        return (f"{self.dialogues} dialogues: {statuses}; {data['turns_per_dialogue']} turns each; "
                f"{share:.0%} of simulated user turns context-dependent "
                f"({data['context_dependent']['per_dialogue']} per dialogue); filtered turns: {filters}")


def _ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3) if denominator else 0.0


def iter_output(path: str | Path) -> Iterator[dict[str, Any]]:
    """The records of a stage output, one at a time (the record store has already repaired a torn line)."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def summarize(records: Iterable[dict[str, Any]],
              dependent: dict[str, tuple[int, str]] | None = None) -> SimulationStats:
    """Statistics over records (a list, or :func:`iter_output` of a file).

    ``dependent`` maps a record id to its :func:`count_dependent`, counted as the record was written (a run
    counts its dialogues as they end, while it waits on the network, rather than all of them after the last);
    a record without an entry is counted here.
    """
    stats = SimulationStats()
    known = dependent or {}
    for record in records:
        stats.add(record, known.get(record.get("id")))
    return stats
