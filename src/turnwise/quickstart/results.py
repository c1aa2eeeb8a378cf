"""The quickstart's result tables: accuracy by kind of turn and by turn, per model, per seed and over seeds.

    table, numbers = results_markdown({"SFT": outcomes(sft_records), "SFT + DPO": outcomes(dpo_records)})
    table, numbers = seeds_markdown([numbers_seed0, numbers_seed1, numbers_seed2])
    page = results_html([numbers_seed0, ...], title="turnwise quickstart")

Standalone turns name their entity; dependent ones (ellipsis, pronoun, ordinal, "the other one") can only
be answered right with the history (:mod:`turnwise.quickstart.world`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from turnwise.eval.stats import RESAMPLES, p_text, paired_difference
from turnwise.quickstart.world import DEPENDENT, ERRORS, Outcomes


def _rate(by_id: Outcomes, keep: Any) -> tuple[int, int]:
    """Right and total over the turns ``keep(position, kind)`` selects."""
    marks = [right for turns in by_id.values() for k, (kind, right) in enumerate(turns) if keep(k, kind)]
    return sum(marks), len(marks)


def summarize(by_id: Outcomes) -> dict[str, Any]:
    """The accuracy of one model's answers: standalone, dependent, by kind of reference and by turn."""
    def ratio(right: int, total: int) -> float | None:
        return round(right / total, 4) if total else None

    counts = {"standalone": _rate(by_id, lambda k, kind: kind == "standalone"),
              "dependent": _rate(by_id, lambda k, kind: kind in DEPENDENT)}
    counts |= {kind: _rate(by_id, lambda k, c, kind=kind: c == kind) for kind in DEPENDENT}
    turns = max((len(t) for t in by_id.values()), default=0)
    return {"dialogues": len(by_id), **{name: ratio(*c) for name, c in counts.items()},
            "counts": {name: list(c) for name, c in counts.items()},
            "by_turn": [ratio(*_rate(by_id, lambda k, kind, n=n: k == n)) for n in range(turns)],
            "by_turn_counts": [list(_rate(by_id, lambda k, kind, n=n: k == n)) for n in range(turns)]}


def _cell(right: int, total: int) -> str:
    return f"{right / total:.0%} ({right}/{total})" if total else "—"


HEADER = ("standalone", "dependent", *DEPENDENT)


def results_markdown(by_model: dict[str, Outcomes], *, against: str | None = None) -> tuple[str, dict[str, Any]]:
    """The evaluation table (Markdown) and its numbers, for models answering the same held-out scripts.

    Standalone turns name their entity; dependent ones (ellipsis, pronoun, ordinal, "the other one") can
    only be answered right with the history. Below the table: how many dependent turns the last model got
    right that ``against`` (default: the first model) got wrong and the other way round, so a difference
    can be told from noise.
    """
    lines = ["| model | " + " | ".join(HEADER) + " |", "|---|" + "---|" * len(HEADER)]
    summary: dict[str, Any] = {}
    for name, by_id in by_model.items():
        summary[name] = summarize(by_id)
        lines.append(f"| {name} | " + " | ".join(_cell(*summary[name]["counts"][h]) for h in HEADER) + " |")
    first, last = against or next(iter(by_model)), list(by_model)[-1]
    fixed, broken = changes(by_model[first], by_model[last])
    summary["changes"] = {"model": last, "against": first, "fixed": fixed, "broken": broken}
    lines += ["", f"{len(by_model[first])} held-out dialogues (entity pairs unseen in training), answered turn by turn "
              "with each model's own history, greedy; a turn is right when it names the entity the user meant, "
              "states the fact(s) asked for and names no other entity "
              "(`turnwise.quickstart.world.check_answer`). Dependent "
              f"turns, {last} vs {first}: {fixed} now right, {broken} now wrong."]
    return "\n".join(lines) + "\n", summary


def changes(before: Outcomes, after: Outcomes) -> tuple[int, int]:
    """Dependent turns right after but not before, and the other way round."""
    pairs = [(b, a) for rid in before for (kind, b), (_, a) in zip(before[rid], after.get(rid, []), strict=False)
             if kind in DEPENDENT]
    return sum(a and not b for b, a in pairs), sum(b and not a for b, a in pairs)




def models_of(summary: dict[str, Any]) -> list[str]:
    """The models of a :func:`results_markdown` summary, in its order."""
    return [name for name, value in summary.items() if isinstance(value, dict) and "dependent" in value]


def _spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value), in percent."""
    pct = [100 * v for v in values]
    return statistics.fmean(pct), statistics.stdev(pct) if len(pct) > 1 else 0.0


def _mean_sd(value: tuple[float, float] | None, seeds: int) -> str:
    if value is None:
        return "—"
    return f"{value[0]:.1f} ± {value[1]:.1f}" if seeds > 1 else f"{value[0]:.1f}"


def _over_seeds(per_seed: list[dict[str, Any]], against: str | None) -> dict[str, Any]:
    """What the tables over seeds show: per model its mean ± sd cells, and its per-seed dependent-turn
    differences to ``against``; and the numbers behind them."""
    models = models_of(per_seed[0])
    n = len(per_seed)
    base = against or models[0]
    cells: dict[str, list[str]] = {}
    deltas: dict[str, list[float]] = {}
    numbers: dict[str, Any] = {"seeds": n, "models": {}}
    for model in models:
        row = {}
        for column in HEADER:
            values = [seed[model][column] for seed in per_seed if seed[model][column] is not None]
            row[column] = _spread(values) if values else None
        turns = len(per_seed[0][model]["by_turn"])
        by_turn = [_spread([seed[model]["by_turn"][k] for seed in per_seed if seed[model]["by_turn"][k] is not None])
                   for k in range(turns)]
        numbers["models"][model] = {**{c: (None if v is None else {"mean": round(v[0], 2), "sd": round(v[1], 2)})
                                       for c, v in row.items()},
                                    "by_turn": [{"mean": round(m, 2), "sd": round(d, 2)} for m, d in by_turn],
                                    "per_seed_dependent": [seed[model]["dependent"] for seed in per_seed]}
        cells[model] = [_mean_sd(row[c], n) for c in HEADER]
        if model != base:
            deltas[model] = [100 * (seed[model]["dependent"] - seed[base]["dependent"]) for seed in per_seed]
            numbers["models"][model]["dependent_vs_" + base] = [round(d, 1) for d in deltas[model]]
    label = f"model ({f'mean ± sd over {n} seeds' if n > 1 else 'one seed'})"
    return {"label": label, "base": base, "cells": cells, "deltas": deltas, "numbers": numbers}


def _delta_line(model: str, deltas: list[float]) -> str:
    return f"{model}: " + ", ".join(f"{d:+.1f}" for d in deltas)


def seeds_markdown(per_seed: list[dict[str, Any]], *, against: str | None = None) -> tuple[str, dict[str, Any]]:
    """The models' accuracy over several seeds' :func:`results_markdown` summaries: mean ± standard deviation.

    Each seed is a whole run (its own split of the toy world, its own models). Below the table: per model,
    the difference to ``against`` (default: the first model) on dependent turns in each seed, so a gain
    that holds in every seed can be told from one that averages out.
    """
    over = _over_seeds(per_seed, against)
    lines = [f"| {over['label']} | " + " | ".join(HEADER) + " |", "|---|" + "---|" * len(HEADER)]
    lines += [f"| {model} | " + " | ".join(cells) + " |" for model, cells in over["cells"].items()]
    lines += ["", f"Accuracy in percent on held-out turns. Dependent turns, each model minus {over['base']}, per "
              "seed (percentage points):", ""]
    lines += [f"- {_delta_line(model, d)}" for model, d in over["deltas"].items()]
    return "\n".join(lines) + "\n", over["numbers"]


def results_html(per_seed: list[dict[str, Any]], *, title: str = "turnwise quickstart", notes: str = "",
                 against: str | None = None, paired: Mapping[str, Any] | None = None) -> str:
    """A page with the per-turn accuracy plot (mean ± 1 SE), accuracy by kind of turn, and the table.

    The error bars are the standard error over seeds when there are several, else the binomial one;
    the per-seed differences are taken against ``against`` (default: the first model).
    """
    from turnwise.eval.html import html_page, swatch
    from turnwise.eval.plots import PALETTE, Series, radar, turn_curve

    models = models_of(per_seed[0])
    colors = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}
    over = _over_seeds(per_seed, against)
    turns, kinds = [], []
    for model in models:
        values = {}
        for k in range(len(per_seed[0][model]["by_turn"])):
            rates = [seed[model]["by_turn"][k] for seed in per_seed if seed[model]["by_turn"][k] is not None]
            if not rates:
                continue
            if len(rates) > 1:
                se = statistics.stdev(rates) / math.sqrt(len(rates))
            else:
                total = per_seed[0][model]["by_turn_counts"][k][1]
                se = math.sqrt(rates[0] * (1 - rates[0]) / total) if total else 0.0
            values[k + 1] = (100 * statistics.fmean(rates), 100 * se)
        turns.append(Series(model, colors[model], values))
        kinds.append(Series(model, colors[model], {c: (v["mean"], None) for c, v in
                                                   over["numbers"]["models"][model].items()
                                                   if c in ("standalone", *DEPENDENT) and v is not None}))
    legend = 50 + 7 * max(len(m) for m in models)  # the swatch and gaps, about 7 px a character at 12 px
    plots = (turn_curve(turns, svg_id="turns-toy", title="held-out accuracy (%) by turn (±1 SE)", high=100.0,
                        y_label="accuracy (%)", width=390 + legend, legend_width=legend)
             + radar(kinds, svg_id="kinds-toy", title="held-out accuracy (%) by kind of turn", high=100.0,
                     width=420 + legend, legend_width=legend))
    head = "".join(f"<th>{escape(h)}</th>" for h in (over["label"], *HEADER))
    rows = "".join(f"<tr><td>{swatch(colors[model])}{escape(model)}</td>"
                   + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>"
                   for model, cells in over["cells"].items())
    deltas = "".join(f"<li>{escape(_delta_line(model, d))}</li>" for model, d in over["deltas"].items())
    body = (f'<div class="plots">{plots}</div><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
            f"<p>Dependent turns against {escape(over['base'])}, per seed (points):</p><ul>{deltas}</ul>"
            + (paired_html(paired, len(per_seed)) if paired else "") + (f"<p>{escape(notes)}</p>" if notes else ""))
    return html_page(title, f"by turnwise; {len(per_seed)} seed(s)", body)


COMPARED = ("dependent", "standalone")


def paired_comparisons(per_seed: Sequence[Mapping[str, Mapping[str, Sequence[Sequence[Any]]]]],
                       baselines: Sequence[str], *, resamples: int = RESAMPLES) -> dict[str, Any]:
    """Every model against every baseline on the same turns, pooled over seeds: the difference in accuracy with a
    95% cluster-bootstrap interval (dialogues resampled, each seed's own) and McNemar's exact p-value.

    Args:
        per_seed: each seed's ``toy_eval`` outcomes: model -> dialogue id -> ``[kind, right]`` per turn.
        baselines: the models the others are compared with.

    Returns:
        ``{baseline: {model: {"dependent": PairedDifference.to_dict(), "standalone": ...}}}``.
    """
    models = list(per_seed[0])
    out: dict[str, Any] = {}
    for base in baselines:
        if base not in models:
            continue
        out[base] = {}
        for model in (m for m in models if m != base):
            row = {}
            for column in COMPARED:
                kinds = DEPENDENT if column == "dependent" else (column,)
                pairs = {f"{n}/{rid}": [(bool(a[1]), bool(b[1])) for a, b in zip(turns, seed[base][rid], strict=True)
                                        if a[0] in kinds]
                         for n, seed in enumerate(per_seed) for rid, turns in seed[model].items()}
                row[column] = paired_difference(pairs, resamples=resamples).to_dict()
            out[base][model] = row
    return out


def paired_markdown(comparisons: Mapping[str, Any], seeds: int) -> str:
    """The paired differences as Markdown: one table per baseline."""
    lines = []
    for base, rows in comparisons.items():
        lines += [f"Against **{base}**, pooled over {seeds} seed(s) (points; 95% bootstrap interval over dialogues; "
                  "McNemar's exact p on turns):", "",
                  "| model | dependent | p | standalone | p |", "|---|---|---|---|---|"]
        for model, row in rows.items():
            cells = [f"{row[c]['diff']:+.1f} [{row[c]['low']:+.1f}, {row[c]['high']:+.1f}] | {p_text(row[c]['p'])}"
                     for c in COMPARED]
            lines.append(f"| {model} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def paired_html(comparisons: Mapping[str, Any], seeds: int) -> str:
    """The paired differences as HTML tables, one per baseline."""
    parts = []
    for base, rows in comparisons.items():
        body = "".join(
            f"<tr><td>{escape(model)}</td>" + "".join(
                f"<td>{row[c]['diff']:+.1f} [{row[c]['low']:+.1f}, {row[c]['high']:+.1f}]</td>"
                f"<td>{escape(p_text(row[c]['p']))}</td>" for c in COMPARED) + "</tr>"
            for model, row in rows.items())
        parts.append(f"<p>Against <b>{escape(base)}</b>, pooled over {seeds} seed(s) (points; 95% bootstrap interval "
                     "over dialogues; McNemar's exact p on turns):</p><table><thead><tr><th>model</th>"
                     "<th>dependent</th><th>p</th><th>standalone</th><th>p</th></tr></thead>"
                     f"<tbody>{body}</tbody></table>")
    return "".join(parts)


def errors_markdown(errors: dict[str, dict[str, int]]) -> str:
    """Per model, its wrong dependent turns by kind of error (counts, and share of its errors)."""
    lines = ["| model | " + " | ".join(ERRORS) + " | wrong |", "|---|" + "---|" * (len(ERRORS) + 1)]
    for label, counts in errors.items():
        total = sum(counts.values())
        cells = [f"{counts[e]} ({counts[e] / total:.0%})" if total else "0" for e in ERRORS]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {total} |")
    return "\n".join(lines) + "\n"
