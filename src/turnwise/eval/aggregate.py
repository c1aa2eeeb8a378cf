"""Scores per turn, per category and overall, with standard errors: pure functions over judgement records.

Single-answer grading (``mean`` benchmarks: MT-Bench, MT-Eval, N-turn files):

- **turn k**: the mean of the turn-k scores, one per dialogue; SE = sample standard deviation / √n.
- **category** and **overall**: the mean of every judged turn in them (FastChat's MT-Bench score), with a
  standard error *clustered by dialogue*, since the turns of one dialogue are not independent:
  ``SE = √(D/(D−1) · Σ_d (Σ_j (x_dj − mean))²) / N`` over D dialogues and N scores (with one score per
  dialogue it is the usual s/√n).

MT-Bench-101 (``min``): a dialogue's score is its lowest judged turn; a task (category) scores the mean
of its dialogues (SE s/√n); the benchmark scores the mean of its task scores, with
``SE = √(Σ SE_task²) / T``. A dialogue with a turn the judge could not grade has no minimum and is left
out (and counted as failed). Per-turn means are still reported, for the degradation curve.

Pairwise: each judged turn is a win (1), a tie (½) or a loss (0) for the model; the win rate is the mean,
with its SE as above (clustered by dialogue).

Failures are counted, never scored: ``answer`` (the model produced no answer to grade) and ``judge``
(no valid verdict after every attempt).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from turnwise.eval.items import aggregate_of

Stat = dict[str, Any]  # {"mean": float | None, "se": float | None, "n": int}

# Categories in the order their benchmarks list them (FastChat's MT-Bench; MT-Bench-101's taxonomy:
# perceptivity, adaptability, interactivity); others follow alphabetically.
CATEGORY_ORDER = ("writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities",
                  "CM", "SI", "AR", "TS", "CC", "CR", "FR", "SC", "SA", "MR", "GR", "IC", "PI")


def ordered(names: Iterable[str]) -> list[str]:
    """Category names in :data:`CATEGORY_ORDER`, then the rest alphabetically."""
    rank = {name: i for i, name in enumerate(CATEGORY_ORDER)}
    return sorted(set(names), key=lambda n: (rank.get(n, len(rank)), n))


def plain_stat(values: Sequence[float]) -> Stat:
    """Mean, standard error (s/√n, None below two values) and count."""
    n = len(values)
    if n == 0:
        return {"mean": None, "se": None, "n": 0}
    mean = sum(values) / n
    if n < 2:
        return {"mean": mean, "se": None, "n": n}
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return {"mean": mean, "se": math.sqrt(var / n), "n": n}


def clustered_stat(clusters: Sequence[Sequence[float]]) -> Stat:
    """Mean of every value, with the standard error clustered by the groups it came in."""
    clusters = [c for c in clusters if c]
    values = [v for c in clusters for v in c]
    n, d = len(values), len(clusters)
    if n == 0:
        return {"mean": None, "se": None, "n": 0}
    mean = sum(values) / n
    if d < 2:
        return {"mean": mean, "se": None, "n": n}
    spread = sum(sum(v - mean for v in c) ** 2 for c in clusters)
    return {"mean": mean, "se": math.sqrt(d / (d - 1) * spread) / n, "n": n}


def _scores(record: dict[str, Any]) -> dict[int, float]:
    return {e["turn"]: float(e["score"]) for e in record.get("scores", []) if e.get("score") is not None}


def _failures(entries: Iterable[dict[str, Any]]) -> Counter[str]:
    return Counter(e["failure"] for e in entries if e.get("failure"))


def summarize_single(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The scores of one model on one benchmark, from its judgement records (see the module docstring)."""
    aggregate = aggregate_of(records[0]["benchmark"]) if records else "mean"
    per_turn: dict[int, list[float]] = {}
    failed: Counter[str] = Counter()
    for record in records:
        for turn, score in _scores(record).items():
            per_turn.setdefault(turn, []).append(score)
        failed += _failures(record.get("scores", []))
    turns = {k: plain_stat(per_turn[k]) for k in sorted(per_turn)}
    categories, overall = (_min_scores if aggregate == "min" else _mean_scores)(records)
    summary = {"aggregate": aggregate, "turns": turns, "categories": categories, "overall": overall,
               "dialogues": len(records), "judged": sum(len(r.get("scores", [])) for r in records),
               "failed": {"answer": failed["answer"], "judge": failed["judge"], "total": sum(failed.values())}}
    if records and records[0]["benchmark"] == "multichallenge":  # pass rates per axis, any-of-N, all-of-N
        from turnwise.eval.multichallenge import summarize

        summary["multichallenge"] = summarize(records)
    return summary


def _by_category(records: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {name: [] for name in ordered(str(r["category"]) for r in records)}
    for record in records:
        groups[str(record["category"])].append(record)
    return groups


def _mean_scores(records: Sequence[dict[str, Any]]) -> tuple[dict[str, Stat], Stat]:
    categories = {name: clustered_stat([list(_scores(r).values()) for r in group])
                  for name, group in _by_category(records).items()}
    return categories, clustered_stat([list(_scores(r).values()) for r in records])


def dialogue_min(record: dict[str, Any]) -> float | None:
    """MT-Bench-101's dialogue score: the lowest judged turn; None when a turn has no score."""
    entries = record.get("scores", [])
    if not entries or any(e.get("score") is None for e in entries):
        return None
    return min(float(e["score"]) for e in entries)


def _min_scores(records: Sequence[dict[str, Any]]) -> tuple[dict[str, Stat], Stat]:
    categories = {}
    for name, group in _by_category(records).items():
        categories[name] = plain_stat([s for r in group if (s := dialogue_min(r)) is not None])
    scored = [c for c in categories.values() if c["mean"] is not None]
    if not scored:
        return categories, {"mean": None, "se": None, "n": 0}
    mean = sum(c["mean"] for c in scored) / len(scored)
    ses = [c["se"] for c in scored]
    se = math.sqrt(sum(s * s for s in ses)) / len(scored) if all(s is not None for s in ses) else None
    return categories, {"mean": mean, "se": se, "n": sum(c["n"] for c in scored)}


_POINTS = {"model": 1.0, "tie": 0.5, "baseline": 0.0}


def _outcome_stat(clusters: list[list[str]]) -> dict[str, Any]:
    flat = [o for c in clusters for o in c]
    stat = clustered_stat([[_POINTS[o] for o in c] for c in clusters])
    return {"win_rate": stat["mean"], "se": stat["se"], "n": stat["n"], "wins": flat.count("model"),
            "ties": flat.count("tie"), "losses": flat.count("baseline")}


def summarize_pairwise(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Wins, ties, losses and the win rate of a model against a baseline, per turn, per category, overall."""
    by_turn: dict[int, list[list[str]]] = {}
    by_category: dict[str, list[list[str]]] = {}
    everything: list[list[str]] = []
    failed: Counter[str] = Counter()
    inconsistent = 0
    for record in records:
        entries = record.get("outcomes", [])
        failed += _failures(entries)
        failed["record"] += not entries and record["status"] == "failed"
        outcomes = [e["outcome"] for e in entries if e.get("outcome")]
        inconsistent += sum(1 for e in entries if e.get("outcome") and not e.get("consistent", True))
        for e in entries:
            if e.get("outcome"):
                by_turn.setdefault(e["turn"], []).append([e["outcome"]])
        by_category.setdefault(str(record["category"]), []).append(outcomes)
        everything.append(outcomes)
    return {"turns": {k: _outcome_stat(by_turn[k]) for k in sorted(by_turn)},
            "categories": {name: _outcome_stat(by_category[name]) for name in ordered(by_category)},
            "overall": _outcome_stat(everything), "inconsistent": inconsistent, "dialogues": len(records),
            "failed": {"answer": failed["answer"], "judge": failed["judge"], "dialogue": failed["record"],
                       "total": sum(failed.values())}}
