"""Score rewrites against human ones: BLEU, ROUGE-1, ROUGE-L, exact match, next to the unchanged question.

    report = evaluate_rewrites(examples, predictions)       # predictions: id → rewrite, or None (baseline only)
    print(report.table())
    print(report.summary_line())     # baseline_bleu=… baseline_rouge1=… bleu=… rouge1=…

The **baseline** predicts every question unchanged: what retrieval gets without a rewriter. Each system is
scored on all turns and on two splits: the turns that need a rewrite (the data's label where it has one,
as MuDoCo's ``rewrite_required``; elsewhere, a human rewrite whose words differ from the question's) and the
turns that do not. BLEU is corpus BLEU over the turns of the split; ROUGE is the mean of per-turn F1; see
:mod:`turnwise.rag.metrics` for the tokens.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from turnwise.errors import ConfigError, InputError
from turnwise.rag.datasets import RewriteExample
from turnwise.rag.metrics import bleu, exact_match, rouge_1, rouge_l

SPLITS = ("all", "needs rewrite", "no rewrite")


@dataclass(frozen=True)
class Scores:
    """One system on one split; every figure in percent, None when the split is empty."""

    n: int
    bleu: float | None
    rouge1: float | None
    rougel: float | None
    exact: float | None


def score(predictions: Sequence[str], references: Sequence[str], lang: str) -> Scores:
    """The four figures for aligned predictions and references."""
    n = len(predictions)
    if n == 0:
        return Scores(0, None, None, None, None)
    pairs = list(zip(predictions, references, strict=True))
    return Scores(
        n,
        bleu(predictions, references, lang),
        100 * sum(rouge_1(p, r, lang) for p, r in pairs) / n,
        100 * sum(rouge_l(p, r, lang) for p, r in pairs) / n,
        100 * sum(exact_match(p, r, lang) for p, r in pairs) / n,
    )


def _language(examples: Sequence[RewriteExample]) -> str:
    return Counter(e.lang for e in examples).most_common(1)[0][0]


@dataclass
class RewriteReport:
    """Scores per system (``baseline``, ``rewriter``) and split (:data:`SPLITS`).

    Attributes:
        lang: the data's language (chooses BLEU's tokenizer and ROUGE's tokens).
        scores: ``scores[system][split]``.
        statuses: how the rewriter reached its rewrites (rewritten, unchanged, skipped, failed), when known.
    """

    lang: str
    scores: dict[str, dict[str, Scores]] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)

    def table(self) -> str:
        """A fixed-width table, one row per system and split."""
        head = f"{'system':<10}{'turns':<15}{'n':>6}{'BLEU':>8}{'ROUGE-1':>9}{'ROUGE-L':>9}{'EM':>8}"
        lines = [head, "-" * len(head)]
        for system, splits in self.scores.items():
            for split, s in splits.items():
                figures = "".join(f"{_pct(v):>{w}}" for v, w in ((s.bleu, 8), (s.rouge1, 9), (s.rougel, 9),
                                                                   (s.exact, 8)))
                lines.append(f"{system:<10}{split:<15}{s.n:>6}{figures}")
        return "\n".join(lines)

    def summary_line(self) -> str:
        """``baseline_bleu=… baseline_rouge1=… bleu=… rouge1=…`` over all turns (the rewriter's when scored)."""
        base = self.scores["baseline"]["all"]
        parts = [f"baseline_bleu={_pct(base.bleu)}", f"baseline_rouge1={_pct(base.rouge1)}"]
        if "rewriter" in self.scores:
            mine = self.scores["rewriter"]["all"]
            parts += [f"bleu={_pct(mine.bleu)}", f"rouge1={_pct(mine.rouge1)}"]
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"lang": self.lang, "statuses": dict(self.statuses),
                "scores": {system: {split: asdict(s) for split, s in splits.items()}
                           for system, splits in self.scores.items()}}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _by_split(examples: Sequence[RewriteExample], predicted: Sequence[str], lang: str) -> dict[str, Scores]:
    out = {}
    for split in SPLITS:
        keep = [i for i, e in enumerate(examples)
                if split == "all" or (e.requires_rewrite is True) == (split == "needs rewrite")]
        out[split] = score([predicted[i] for i in keep], [examples[i].reference or "" for i in keep], lang)
    return out


def evaluate_rewrites(
    examples: Sequence[RewriteExample],
    predictions: Mapping[str, str] | None = None,
    *,
    statuses: Mapping[str, int] | None = None,
) -> RewriteReport:
    """Score the unchanged-question baseline and, when given, the predicted rewrites.

    Args:
        examples: turns with human rewrites.
        predictions: the rewrite of every example, by id (a failed rewrite counts as the question itself).
        statuses: how the rewriter reached its rewrites, shown with the report.

    Raises:
        ConfigError: no examples, an example without a human rewrite, or an example without a prediction.
    """
    if not examples:
        raise ConfigError("no turns to evaluate")
    missing_ref = [e.id for e in examples if e.reference is None]
    if missing_ref:
        raise ConfigError(f"{len(missing_ref)} turns have no human rewrite to compare with (first: {missing_ref[0]})")
    lang = _language(examples)
    report = RewriteReport(lang, statuses=dict(statuses or {}))
    report.scores["baseline"] = _by_split(examples, [e.question for e in examples], lang)
    if predictions is not None:
        missing = [e.id for e in examples if e.id not in predictions]
        if missing:
            raise ConfigError(f"{len(missing)} turns have no prediction (first: {missing[0]})")
        report.scores["rewriter"] = _by_split(examples, [predictions[e.id] for e in examples], lang)
    return report


def _prediction(record: dict[str, Any], path: Path, line: int) -> str:
    for key in ("query", "rewrite", "prediction"):
        if isinstance(record.get(key), str):
            return record[key]
    raise InputError(str(path), line, "a prediction record needs a 'query', 'rewrite' or 'prediction' string")


def read_predictions(path: str | Path, examples: Sequence[RewriteExample]) -> dict[str, str]:
    """Predictions from JSON Lines records ``{id, query|rewrite|prediction}`` (e.g. `turnwise rewrite`'s
    output, where a failed turn's ``query`` is the question) or from plain text, one line per turn in the
    data's order.

    Raises:
        InputError: a record without an id or a prediction, or a text file whose line count is not the data's.
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    first = next((line for line in lines if line.strip()), "")
    try:
        head = json.loads(first)
    except json.JSONDecodeError:
        head = None
    if isinstance(head, dict) and "id" in head:
        out = {}
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(str(path), n, f"bad JSON: {exc.msg}") from None
            if not isinstance(record, dict) or "id" not in record:
                raise InputError(str(path), n, "a prediction record needs an 'id'")
            out[str(record["id"])] = _prediction(record, path, n)
        return out
    if len(lines) != len(examples):
        raise InputError(str(path), None, f"{len(lines)} lines of predictions for {len(examples)} turns "
                                          "(plain text needs one line per turn, in the data's order)")
    return {e.id: line for e, line in zip(examples, lines, strict=True)}
