"""Choose the preference pair among scored candidates: pure, deterministic, pinned by unit tests.

Rules, in order:

1. Only successfully scored candidates count; with fewer than ``min_scored`` the prompt is skipped
   (LongReward keeps prompts with at least 5 of 10).
2. Candidates are ranked by total, highest first; equal totals keep sampling order (lower index first).
   The chosen one is the first; the rejected one is the last whose text differs from the chosen text
   (so among equally bad candidates the one sampled last is rejected).
3. The pair is kept only when chosen − rejected ≥ ``min_margin`` and > 0: a pair whose answers the judge
   cannot tell apart teaches nothing but noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from turnwise.errors import ConfigError


@dataclass(frozen=True)
class Candidate:
    """A sampled response.

    Attributes:
        index: sampling order (0-based).
        text: the response.
        total: its total score, or None when it could not be scored.
    """

    index: int
    text: str
    total: float | None


@dataclass(frozen=True)
class Pick:
    """The pair chosen, or why there is none."""

    chosen: int | None = None
    rejected: int | None = None
    margin: float | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def pick_pair(candidates: Sequence[Candidate], *, min_scored: int = 5, min_margin: float = 1.0) -> Pick:
    """The best and the worst candidate, by the rules in the module docstring.

    Raises:
        ConfigError: ``min_scored`` < 2 or ``min_margin`` < 0.
    """
    if min_scored < 2 or min_margin < 0:
        raise ConfigError(f"min_scored must be >= 2 and min_margin >= 0 (got {min_scored}, {min_margin})")
    scored = [c for c in candidates if c.total is not None]
    if len(scored) < min_scored:
        return Pick(reason=f"only {len(scored)} of {len(candidates)} responses were scored (need {min_scored})")
    ranked = sorted(scored, key=lambda c: (-c.total, c.index))  # type: ignore[operator]
    best = ranked[0]
    others = [c for c in ranked if c.text.strip() != best.text.strip()]
    if not others:
        return Pick(reason="every scored response has the same text")
    worst = others[-1]
    margin = float(best.total) - float(worst.total)  # type: ignore[arg-type]
    if margin <= 0:
        return Pick(reason="every scored response has the same total: no better and worse answer")
    if margin < min_margin:
        return Pick(reason=f"margin {margin:.2f} is below the minimum {min_margin:g}")
    return Pick(best.index, worst.index, margin)
