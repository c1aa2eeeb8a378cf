"""When is a rejected answer too close to the chosen one to teach anything? Normalised text similarity.

Both answers are lower-cased, their punctuation dropped and their spaces collapsed; identical results are
"equal", and otherwise difflib's ratio (2·matches / total length, on characters, so Chinese works the same)
at or above the threshold is "nearly equal". A pair like that would push the model away from its own
good answer, so it is dropped and counted.
"""

from __future__ import annotations

import difflib
import re
import unicodedata

_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Lower case, no punctuation or symbols, single spaces."""
    kept = "".join(" " if unicodedata.category(ch)[0] in "PSZ" else ch for ch in text.lower())
    return _SPACE.sub(" ", kept).strip()


def similarity(a: str, b: str) -> float:
    """difflib's ratio of the normalised texts (1.0 for equal ones)."""
    na, nb = normalize(a), normalize(b)
    if na == nb:
        return 1.0
    matcher = difflib.SequenceMatcher(None, na, nb, autojunk=False)
    if matcher.real_quick_ratio() < 0.5 or matcher.quick_ratio() < 0.5:
        return matcher.quick_ratio()  # an upper bound already far below any sensible threshold
    return matcher.ratio()


def too_close(rejected: str, chosen: str, threshold: float) -> str | None:
    """Why ``rejected`` cannot stand against ``chosen`` (equal or nearly equal), or None when it can."""
    if normalize(rejected) == normalize(chosen):
        return "rejected equals chosen"
    if similarity(rejected, chosen) >= threshold:
        return "rejected nearly equals chosen"
    return None
