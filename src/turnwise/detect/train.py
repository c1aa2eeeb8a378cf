"""Train the learned context-dependence detector on labelled turns: public sets, the toy world, or the user's own.

    turnwise detect train detector/ --data canard_dev --data mudoco_news --data toy_world --data labelled.jsonl

A labelled file is JSON Lines, one turn per line: ``{"messages": [...], "dependent": true}``, the turn being the
last message (a user one); optional ``rewrite`` (a self-contained rewrite: with ``rewrites`` on it becomes a
standalone example), ``group`` (the dialogue: folds keep it together; default the line) and ``lang``.

Each source weighs the same in the fit, its two classes half each (a class under ``MIN_CLASS`` turns is not
up-weighted: two standalone turns must not weigh as much as two thousand). The probability is calibrated by
Platt scaling on out-of-fold scores (folds grouped by dialogue). Nothing here is random but the fold
assignment, which ``seed`` fixes, so the same data and settings give the same parameters and hash.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from turnwise.detect.classifier import grouped_folds
from turnwise.detect.labelled import DATASETS, LabelledTurn, load_dataset, with_rewrites
from turnwise.detect.learned import EMBEDDING_MODEL, LearnedDetector, QuantizedEmbedder, TurnRef, featurize
from turnwise.detect.logistic import fit_logistic, fit_platt
from turnwise.detect.text import language
from turnwise.errors import ConfigError, InputError, require

MIN_CLASS = 20
DEFAULT_SOURCES = ("canard_dev", "mudoco_news", "zh_rewrite_dev", "toy_world")


@dataclass(frozen=True)
class TrainSettings:
    """How the detector is fitted.

    Attributes:
        l2: the L2 penalty (the weights are scaled to a mean of 1 per turn, so it does not depend on the data's size).
        rewrites: add each dependent turn's human rewrite as a standalone turn in the same place.
        folds: folds (grouped by dialogue) for the out-of-fold scores that calibrate the probability.
        seed: decides the fold assignment.
        threshold: the decision threshold written into the model (``turnwise detect --threshold`` overrides it).
    """

    l2: float = 30.0
    rewrites: bool = True
    folds: int = 5
    seed: int = 0
    threshold: float = 0.5


def read_labelled(path: str | Path) -> list[LabelledTurn]:
    """Labelled turns from a JSON Lines file; a bad line raises :class:`InputError` naming the file, line and rule."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, f"no such labelled file (and not a public source: {', '.join(DATASETS)})")
    examples = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            examples.append(_labelled_line(line, path, n))
    if not examples:
        raise InputError(path, None, "no labelled turns")
    return examples


def _labelled_line(line: str, path: Path, n: int) -> LabelledTurn:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(path, n, f"not JSON ({exc.msg})") from None
    messages = row.get("messages") if isinstance(row, dict) else None
    roles = ("system", "user", "assistant")
    if not isinstance(messages, list) or not messages or not all(
            isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") in roles for m in messages):
        raise InputError(path, n, "'messages' must be a non-empty list of {role, content} messages")
    if messages[-1]["role"] != "user":
        raise InputError(path, n, "the labelled turn (the last message) must be a user message")
    if not isinstance(row.get("dependent"), bool):
        raise InputError(path, n, "'dependent' must be true or false")
    lang = row.get("lang") or language(messages[-1]["content"])
    if lang not in ("en", "zh"):
        raise InputError(path, n, f"'lang' must be en or zh, got {lang!r}")
    if row.get("rewrite") is not None and not isinstance(row["rewrite"], str):
        raise InputError(path, n, "'rewrite' must be a string")
    messages = tuple({"role": m["role"], "content": m["content"]} for m in messages)
    return LabelledTurn(str(row.get("group", f"{path.name}-{n}")), messages, row["dependent"], lang, row.get("rewrite"))


def load_sources(names: Sequence[str], data_dir: str | Path) -> dict[str, list[LabelledTurn]]:
    """Each ``--data`` entry: a public source (:data:`DATASETS`) from ``data_dir``, or a labelled JSONL file."""
    sources = {}
    for name in names:
        if name in DATASETS:
            file = DATASETS[name][0]
            if file and not (Path(data_dir) / file).is_file():
                raise ConfigError(f"{name}: {Path(data_dir) / file} not found (--data-dir is the shared data folder)")
            sources[name] = load_dataset(name, data_dir)
        else:
            sources[Path(name).stem] = read_labelled(name)
    return sources


def source_weights(labels_by_source: Mapping[str, Sequence[bool]]) -> list[float]:
    """Per turn: each source 1 in all, split between its classes (see the module docstring)."""
    weights = []
    for labels in labels_by_source.values():
        counts = {c: sum(y == c for y in labels) for c in (True, False)}
        balanced = min(counts.values()) >= MIN_CLASS
        weights += [1 / (2 * counts[y]) if balanced else 1 / len(labels) for y in labels]
    return weights


def reliability(probabilities: Sequence[float], labels: Sequence[bool], bins: int = 10) -> list[dict[str, Any]]:
    """Predicted against observed dependent share in ``bins`` equal-width bins."""
    table = []
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = [(p, y) for p, y in zip(probabilities, labels, strict=True)
                  if low <= p < high or (b == bins - 1 and p == 1.0)]
        mean = sum(p for p, _ in inside) / len(inside) if inside else 0.0
        observed = sum(y for _, y in inside) / len(inside) if inside else 0.0
        table.append({"low": low, "high": high, "n": len(inside), "mean": round(mean, 4),
                      "observed": round(observed, 4)})
    return table


def expected_calibration_error(table: Sequence[Mapping[str, Any]]) -> float:
    total = sum(b["n"] for b in table)
    return sum(b["n"] * abs(b["mean"] - b["observed"]) for b in table) / total if total else 0.0


@dataclass
class Featurized:
    """One source's training rows: features, labels and dialogue groups (rewrites included when asked for)."""

    name: str
    x: Any
    y: list[bool]
    groups: list[str]


def featurize_source(name: str, examples: Sequence[LabelledTurn], settings: TrainSettings, embedder: Any) -> Featurized:
    rows = with_rewrites(list(examples)) if settings.rewrites else list(examples)
    if not rows:
        raise ConfigError(f"{name}: no labelled turns")
    x, _ = featurize([TurnRef(e.messages, len(e.messages) - 1, e.lang) for e in rows], embedder)
    return Featurized(name, x, [e.dependent for e in rows], [f"{name}/{e.group}" for e in rows])


def fit_sources(parts: Sequence[Featurized], settings: TrainSettings, *, command: str = "") -> LearnedDetector:
    """Fit and calibrate a detector on featurized sources."""
    np = require("numpy", "rag")
    start = time.perf_counter()
    x = np.vstack([p.x for p in parts])
    y = np.array([v for p in parts for v in p.y], dtype=np.float64)
    if len(set(y.tolist())) < 2:
        raise ConfigError("the training data needs dependent and standalone turns")
    w = np.array(source_weights({p.name: p.y for p in parts}))
    raw = _out_of_fold(x, y, w, [g for p in parts for g in p.groups], settings)
    platt = fit_platt(raw, y, w)
    weights, bias = fit_logistic(x, y, w, l2=settings.l2)
    calibrated = 1.0 / (1.0 + np.exp(-(platt[0] * raw + platt[1])))
    card = {"command": command, "l2": settings.l2, "rewrites": settings.rewrites, "folds": settings.folds,
            "seed": settings.seed,
            "data": {p.name: {"dependent": sum(p.y), "standalone": len(p.y) - sum(p.y)} for p in parts},
            "reliability": reliability(calibrated.tolist(), [bool(v) for v in y]),
            "seconds to fit": round(time.perf_counter() - start, 1)}
    # Rounded so that float noise of another BLAS or thread count does not change the hash.
    return LearnedDetector(tuple(round(float(v), 5) for v in weights), round(bias, 5),
                           (round(platt[0], 5), round(platt[1], 5)), settings.threshold, EMBEDDING_MODEL, card)


def train_detector(sources: Mapping[str, Sequence[LabelledTurn]], settings: TrainSettings | None = None, *,
                   embedder: Any = None, command: str = "",
                   progress: Callable[[str], None] | None = None) -> LearnedDetector:
    """Fit a :class:`LearnedDetector` on every source's turns (and their rewrites, when ``settings.rewrites``)."""
    settings = settings or TrainSettings()
    say = progress or (lambda _: None)
    if embedder is None:
        embedder = QuantizedEmbedder(EMBEDDING_MODEL)
    parts = []
    for name, examples in sources.items():
        say(f"{name}: featurizing {len(examples)} labelled turns")
        parts.append(featurize_source(name, examples, settings, embedder))
    say(f"fitting; calibrating on {settings.folds} folds grouped by dialogue")
    return fit_sources(parts, settings, command=command)


def _out_of_fold(x: Any, y: Any, w: Any, groups: list[str], settings: TrainSettings) -> Any:
    """Each row's raw score from a model fitted without its dialogue."""
    np = require("numpy", "rag")
    raw = np.zeros(len(y))
    for fold in grouped_folds(groups, settings.folds, settings.seed):
        held = np.zeros(len(y), dtype=bool)
        held[fold] = True
        if len(set(y[~held].tolist())) < 2:
            continue
        weights, bias = fit_logistic(x[~held], y[~held], w[~held], l2=settings.l2)
        raw[held] = x[held] @ weights + bias
    return raw
