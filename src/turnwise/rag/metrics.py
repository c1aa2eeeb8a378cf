"""Rewrite metrics: corpus BLEU (sacrebleu), ROUGE-1 and ROUGE-L F1, exact match.

    bleu(["how long is the nile ?"], ["How long is the Nile?"], "en")     # sacrebleu, 13a tokens
    rouge_1("How long is the Nile?", "how long is the nile", "en")        # 1.0

* **BLEU** is sacrebleu's corpus BLEU with its default settings and tokenizer ``13a`` (English) or ``zh``
  (Chinese), so figures compare with published ones. It is case-sensitive, as sacrebleu is by default.
* **ROUGE-1 / ROUGE-L** are F1 (β = 1) per turn, averaged over turns, computed here: on lower-cased words
  (runs of letters and digits; punctuation dropped, as the ``rouge-score`` package does) for English, and on
  characters for Chinese (each CJK character is a token; a run of Latin letters or digits is one token).
  ROUGE-L uses the longest common subsequence of the two token lists.
* **Exact match**: the same token lists (so case, spacing and punctuation do not count).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from turnwise.errors import require

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_ZH_TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")
_EN_TOKEN = re.compile(r"[^\W_]+")


def tokens(text: str, lang: str) -> list[str]:
    """The tokens ROUGE and exact match compare: lower-cased words (en), characters (zh)."""
    pattern = _ZH_TOKEN if lang == "zh" else _EN_TOKEN
    return pattern.findall(text.lower())


def _f1(overlap: int, predicted: int, reference: int) -> float:
    if overlap == 0 or predicted == 0 or reference == 0:
        return 0.0
    precision, recall = overlap / predicted, overlap / reference
    return 2 * precision * recall / (precision + recall)


def rouge_1(prediction: str, reference: str, lang: str) -> float:
    """Unigram F1 with clipped counts, in [0, 1]."""
    pred, ref = tokens(prediction, lang), tokens(reference, lang)
    overlap = sum((Counter(pred) & Counter(ref)).values())
    return _f1(overlap, len(pred), len(ref))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence (one row of the dynamic programme at a time)."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str, lang: str) -> float:
    """LCS-based F1 (β = 1), in [0, 1]."""
    pred, ref = tokens(prediction, lang), tokens(reference, lang)
    return _f1(lcs_length(pred, ref), len(pred), len(ref))


def exact_match(prediction: str, reference: str, lang: str) -> bool:
    return tokens(prediction, lang) == tokens(reference, lang)


def bleu(predictions: Sequence[str], references: Sequence[str], lang: str) -> float | None:
    """sacrebleu's corpus BLEU (0–100) with tokenizer ``13a`` or ``zh``; None for no turns."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        return None
    sacrebleu = require("sacrebleu", "eval")
    return float(sacrebleu.corpus_bleu(list(predictions), [list(references)],
                                       tokenize="zh" if lang == "zh" else "13a").score)
