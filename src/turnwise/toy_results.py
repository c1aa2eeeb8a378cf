"""The quickstart's result tables: accuracy by kind of turn and by turn, per model, per seed and over seeds.

    table, numbers = results_markdown({"SFT": outcomes(sft_records), "SFT + DPO": outcomes(dpo_records)})
    table, numbers = seeds_markdown([numbers_seed0, numbers_seed1, numbers_seed2])
    page = results_html([numbers_seed0, ...], title="turnwise quickstart")

Standalone turns name their entity; dependent ones (ellipsis, pronoun, ordinal, "the other one") can only
be answered right with the history (:mod:`turnwise.toy`).
"""

from __future__ import annotations

import math
import statistics
import time
from html import escape
from typing import Any

from turnwise.toy import DEPENDENT, Outcomes


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
              "states the fact(s) asked for and names no other entity (`turnwise.toy.check_answer`). Dependent "
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


def seeds_markdown(per_seed: list[dict[str, Any]], *, against: str | None = None) -> tuple[str, dict[str, Any]]:
    """The models' accuracy over several seeds' :func:`results_markdown` summaries: mean ± standard deviation.

    Each seed is a whole run (its own split of the toy world, its own models). Below the table: per model,
    the difference to ``against`` (default: the first model) on dependent turns in each seed, so a gain
    that holds in every seed can be told from one that averages out.
    """
    models = models_of(per_seed[0])
    header = ("standalone", "dependent", *DEPENDENT)
    n = len(per_seed)
    lines = [f"| model ({f'mean ± sd over {n} seeds' if n > 1 else 'one seed'}) | " + " | ".join(header) + " |",
             "|---|" + "---|" * len(header)]
    numbers: dict[str, Any] = {"seeds": n, "models": {}}
    for model in models:
        row = {}
        for column in header:
            values = [seed[model][column] for seed in per_seed if seed[model][column] is not None]
            row[column] = _spread(values) if values else None
        turns = len(per_seed[0][model]["by_turn"])
        by_turn = [_spread([seed[model]["by_turn"][k] for seed in per_seed if seed[model]["by_turn"][k] is not None])
                   for k in range(turns)]
        numbers["models"][model] = {**{c: (None if v is None else {"mean": round(v[0], 2), "sd": round(v[1], 2)})
                                       for c, v in row.items()},
                                    "by_turn": [{"mean": round(m, 2), "sd": round(d, 2)} for m, d in by_turn],
                                    "per_seed_dependent": [seed[model]["dependent"] for seed in per_seed]}
        lines.append(f"| {model} | " + " | ".join(_mean_sd(row[c], n) for c in header) + " |")
    base = against or models[0]
    lines += ["", f"Accuracy in percent on held-out turns. Dependent turns, each model minus {base}, per seed "
              "(percentage points):", ""]
    for model in models:
        if model == base:
            continue
        deltas = [100 * (seed[model]["dependent"] - seed[base]["dependent"]) for seed in per_seed]
        numbers["models"][model]["dependent_vs_" + base] = [round(d, 1) for d in deltas]
        lines.append(f"- {model}: " + ", ".join(f"{d:+.1f}" for d in deltas))
    return "\n".join(lines) + "\n", numbers


def results_html(per_seed: list[dict[str, Any]], *, title: str = "turnwise quickstart", notes: str = "",
                 against: str | None = None) -> str:
    """A page with the per-turn accuracy plot (mean ± 1 SE), accuracy by kind of turn, and the table.

    The error bars are the standard error over seeds when there are several, else the binomial one;
    the per-seed differences are taken against ``against`` (default: the first model).
    """
    from turnwise.eval.plots import PALETTE, Series, radar, turn_curve

    models = models_of(per_seed[0])
    colors = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}
    table, numbers = seeds_markdown(per_seed, against=against)
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
        kinds.append(Series(model, colors[model], {c: (v["mean"], None) for c, v in numbers["models"][model].items()
                                                   if c in ("standalone", *DEPENDENT) and v is not None}))
    legend = 50 + 7 * max(len(m) for m in models)  # the swatch and gaps, about 7 px a character at 12 px
    plots = (turn_curve(turns, svg_id="turns-toy", title="held-out accuracy (%) by turn (±1 SE)", high=100.0,
                        y_label="accuracy (%)", width=390 + legend, legend_width=legend)
             + radar(kinds, svg_id="kinds-toy", title="held-out accuracy (%) by kind of turn", high=100.0,
                     width=420 + legend, legend_width=legend))
    rows = [line for line in table.splitlines() if line.startswith("|")]
    head = [c.strip() for c in rows[0].strip("|").split("|")]
    body = [[c.strip() for c in r.strip("|").split("|")] for r in rows[2:]]
    swatch = '<span style="display:inline-block;width:10px;height:10px;margin-right:6px;background:{}"></span>'
    html_rows = "".join("<tr>" + "".join(f"<td>{swatch.format(colors[r[0]]) if i == 0 else ''}{escape(c)}</td>"
                                         for i, c in enumerate(r)) + "</tr>" for r in body)
    after = "".join(f"<li>{escape(line[2:])}</li>" for line in table.splitlines() if line.startswith("- "))
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            "<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
            "th,td{border:1px solid #ddd;padding:4px 10px;text-align:right}th:first-child,td:first-child"
            "{text-align:left}th{background:#f5f5f5}.plots svg{margin-right:1em}</style></head><body>"
            f"<h1>{escape(title)}</h1><p>generated {stamp}; {len(per_seed)} seed(s)</p>"
            f'<div class="plots">{plots}</div>'
            "<table><thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + f"</tr></thead><tbody>{html_rows}"
            f"</tbody></table><p>Dependent turns against {escape(against or models[0])}, per seed (points):</p>"
            f"<ul>{after}</ul>"
            + (f"<p>{escape(notes)}</p>" if notes else "") + "</body></html>\n")
