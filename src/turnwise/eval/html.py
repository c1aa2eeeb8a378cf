"""The report as one self-contained HTML page: plots (inline SVG) and tables, no scripts, nothing fetched.

For each benchmark with single-answer grades: the multi-turn degradation curve (mean score by turn
index, ±1 SE, one line per model; ``<svg id="turns-BENCHMARK">``), a radar of the categories
(``<svg id="radar-BENCHMARK">``), and the table of :func:`turnwise.eval.report.single_table`. Pairwise
comparisons follow as tables; sharded runs (``turnwise eval sharded``) get the accuracy of the answer at each turn
(``<svg id="turns-sharded">``) and their settings' table. Models keep their colour across plots
(:data:`turnwise.eval.plots.PALETTE`).
"""

from __future__ import annotations

import re
import time
from html import escape
from typing import Any

from turnwise.eval.plots import PALETTE, Series, radar, turn_curve
from turnwise.eval.report import by_benchmark, pairwise_table, single_table

_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; }
.meta { color: #666; font-size: 13px; } .plots { display: flex; flex-wrap: wrap; gap: 16px; }
.plot { border: 1px solid #e3e3e3; border-radius: 4px; }
table { border-collapse: collapse; margin: 12px 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f5f5f5; } .swatch { display: inline-block; width: 10px; height: 10px; margin-right: 6px; }
"""


def slug(name: str) -> str:
    """An id-safe form of a benchmark name."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "benchmark"


def _colors(report: dict[str, Any]) -> dict[str, str]:
    names: list[str] = []
    for summary in report["single"] + report["pairwise"]:
        if summary["model"] not in names:
            names.append(summary["model"])
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def _table(header: list[str], rows: list[list[str]], colors: list[str | None]) -> str:
    head = "".join(f"<th>{swatch(c)}{escape(h)}</th>" for h, c in zip(header, [None, *colors], strict=False))
    body = []
    for row in rows:
        cells = []
        for cell in row:
            text = escape(cell.replace("**", ""))
            cells.append(f"<td><strong>{text}</strong></td>" if cell.startswith("**") else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def swatch(color: str | None) -> str:
    """A small square in a model's colour, before its name in a table."""
    return f'<span class="swatch" style="background:{color}"></span>' if color else ""


def _single_section(bench: str, summaries: list[dict[str, Any]], colors: dict[str, str]) -> str:
    header, rows = single_table(summaries)
    labels = header[1:]
    turns = [Series(label, colors[s["model"]], {int(t): (v["mean"], v["se"]) for t, v in s["turns"].items()})
             for label, s in zip(labels, summaries, strict=True)]
    cats = [Series(label, colors[s["model"]], {c: (v["mean"], v["se"]) for c, v in s["categories"].items()})
            for label, s in zip(labels, summaries, strict=True)]
    key = slug(bench)
    how = "mean of each dialogue's lowest judged turn, per task" if summaries[0]["aggregate"] == "min" else \
        "mean of judged turns"
    plots = (turn_curve(turns, svg_id=f"turns-{key}", title=f"{bench}: mean score by turn (±1 SE)")
             + radar(cats, svg_id=f"radar-{key}", title=f"{bench}: score by category"))
    return (f'<section id="single-{key}"><h2>{escape(bench)}: single-answer grading</h2>'
            f'<p class="meta">judge {escape(", ".join(sorted({str(s["judge"]) for s in summaries})))}; '
            f"category and overall scores: {escape(how)}</p>"
            f'<div class="plots">{plots}</div>'
            + _table(header, rows, [colors[s["model"]] for s in summaries]) + "</section>")


def _pairwise_section(bench: str, summaries: list[dict[str, Any]], colors: dict[str, str]) -> str:
    header, rows = pairwise_table(summaries)
    return (f'<section id="pairwise-{slug(bench)}"><h2>{escape(bench)}: pairwise against a baseline</h2>'
            '<p class="meta">each turn judged in both orders; disagreeing orders count as a tie; '
            "win rate counts ties as ½ (wins/ties/losses)</p>"
            + _table(header, rows, [colors[s["model"]] for s in summaries]) + "</section>")


def _sharded_section(summaries: list[dict[str, Any]]) -> str:
    """Sharded evaluation: the accuracy of the answer at each turn of the sharded runs, one line per model, and
    the settings' table of each model."""
    from turnwise.eval.sharded import interval_text

    colors = {s["model"]: PALETTE[i % len(PALETTE)] for i, s in enumerate(summaries)}
    curves = [Series(s["model"], colors[s["model"]], {int(k): (v, None) for k, v in s["sharded_accuracy_by_turn"]
                                                      .items()}) for s in summaries]
    plot = turn_curve(curves, svg_id="turns-sharded", title="sharded: accuracy of the answer at each turn", high=1.0,
                      y_label="accuracy")
    tables = []
    for s in summaries:
        rows = [[setting, *(interval_text(row[k]) for k in ("accuracy", "aptitude", "unreliability"))]
                for setting, row in s["settings"].items()]
        tables.append(_table([s["model"], "accuracy", "aptitude (P90)", "unreliability (P90 − P10)"], rows,
                             [colors[s["model"]]]))
    return ('<section id="sharded"><h2>sharded evaluation (lost in conversation)</h2>'
            '<p class="meta">percent, 95% bootstrap intervals over tasks; a run scores its last answer</p>'
            f'<div class="plots">{plot}</div>' + "".join(tables) + "</section>")


def render_html(report: dict[str, Any], *, title: str = "turnwise eval") -> str:
    """The whole page as a string."""
    colors = _colors(report)
    sections = [_single_section(b, s, colors) for b, s in by_benchmark(report, "single").items()]
    sections += [_pairwise_section(b, s, colors) for b, s in by_benchmark(report, "pairwise").items()]
    if report.get("sharded"):
        sections.append(_sharded_section(report["sharded"]))
    if not sections:
        sections = ["<p>No judgements to report.</p>"]
    return html_page(title, "by turnwise eval report", "\n".join(sections))


def html_page(title: str, meta: str, body: str) -> str:
    """A self-contained page: the shared style, the title, a generated-at line ending in ``meta``, then ``body``."""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{escape(title)}</h1>"
            f'<p class="meta">generated {stamp} {escape(meta)}</p>' + body + "</body></html>\n")
