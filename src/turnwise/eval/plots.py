"""Two plots as inline SVG, with no plotting library: score by turn index, and a radar of categories.

    svg = turn_curve([Series("qwen", "#1f77b4", {1: (8.1, 0.2), 2: (7.2, 0.3)})], svg_id="turns-mt-bench")
    svg = radar([Series("qwen", "#1f77b4", {"writing": (8.0, None), ...})], svg_id="radar-mt-bench")

Each plot is an ``<svg id=...>`` whose series are ``<g class="series" data-label=...>`` groups drawn in
the series' colour (lines and markers at full opacity, so the colour shows as it is in a screenshot).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_GRID = "#d0d0d0"
_INK = "#333333"
_FONT = 'font-family="sans-serif" font-size="12"'


@dataclass
class Series:
    """One model's values: turn (or category) → (mean, standard error or None); a None mean is not drawn."""

    label: str
    color: str
    values: dict


def _legend(series: list[Series], x: float, y: float) -> list[str]:
    out = []
    for i, s in enumerate(series):
        yy = y + 18 * i
        out.append(f'<line x1="{x}" y1="{yy}" x2="{x + 22}" y2="{yy}" stroke="{s.color}" stroke-width="4"/>')
        out.append(f'<text x="{x + 28}" y="{yy + 4}" {_FONT} fill="{_INK}">{escape(s.label)}</text>')
    return out


def turn_curve(series: list[Series], *, svg_id: str, title: str = "Score by turn", low: float = 0.0,
               high: float = 10.0, width: int = 540, height: int = 380, y_label: str = "mean score",
               legend_width: int = 150) -> str:
    """A line per series through its mean score at each turn, with ±1 SE error bars."""
    left, right, top, bottom = 56, legend_width, 40, 50
    turns = sorted({t for s in series for t in s.values})
    if not turns:
        turns = [1]
    span_x, span_y = width - left - right, height - top - bottom

    def px(turn: int) -> float:  # 16 px inside the frame, so that end markers and error bars show whole
        inner = span_x - 32
        return left + 16 + (inner / 2 if len(turns) == 1 else inner * (turn - turns[0]) / (turns[-1] - turns[0]))

    def py(value: float) -> float:
        return top + span_y * (1 - (min(max(value, low), high) - low) / (high - low))

    parts = [f'<svg id="{escape(svg_id)}" class="plot" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
             f'<text x="{left}" y="22" {_FONT} font-size="15" fill="{_INK}">{escape(title)}</text>']
    for tick in _ticks(low, high):
        y = py(tick)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{_GRID}"/>')
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" {_FONT} text-anchor="end" fill="{_INK}">{tick:g}</text>')
    for t in turns:
        parts.append(f'<text x="{px(t):.1f}" y="{height - bottom + 18}" {_FONT} text-anchor="middle" '
                     f'fill="{_INK}">{t}</text>')
    parts.append(f'<text x="{left + span_x / 2:.1f}" y="{height - 10}" {_FONT} text-anchor="middle" '
                 f'fill="{_INK}">turn</text>')
    parts.append(f'<text x="14" y="{top + span_y / 2:.1f}" {_FONT} text-anchor="middle" fill="{_INK}" '
                 f'transform="rotate(-90 14 {top + span_y / 2:.1f})">{escape(y_label)}</text>')
    for s in series:
        parts.extend(_curve(s, px, py))
    parts.extend(_legend(series, width - right + 16, top + 10))
    parts.append("</svg>")
    return "\n".join(parts)


def _curve(s: Series, px, py) -> list[str]:
    points = [(t, m, se) for t, (m, se) in sorted(s.values.items()) if m is not None]
    out = [f'<g class="series" data-label="{escape(s.label)}">']
    if len(points) > 1:
        path = " ".join(f"{px(t):.1f},{py(m):.1f}" for t, m, _ in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="3"/>')
    for t, m, se in points:
        x = px(t)
        if se:
            y1, y2 = py(m - se), py(m + se)
            out.append(f'<line x1="{x:.1f}" y1="{y1:.1f}" x2="{x:.1f}" y2="{y2:.1f}" stroke="{s.color}" '
                       f'stroke-width="1.5"/>')
            for y in (y1, y2):
                out.append(f'<line x1="{x - 5:.1f}" y1="{y:.1f}" x2="{x + 5:.1f}" y2="{y:.1f}" stroke="{s.color}" '
                           f'stroke-width="1.5"/>')
        out.append(f'<circle cx="{x:.1f}" cy="{py(m):.1f}" r="5.5" fill="{s.color}"><title>{escape(s.label)} '
                   f'turn {t}: {m:.2f}</title></circle>')
    out.append("</g>")
    return out


def _ticks(low: float, high: float) -> list[float]:
    step = 20.0 if high - low > 50 else 2.0 if high - low > 5 else 1.0 if high - low > 2 else 0.25
    first = math.ceil(low / step) * step
    return [first + step * i for i in range(int((high - first) / step + 1e-9) + 1)]


def radar(series: list[Series], *, svg_id: str, title: str = "Score by category", low: float = 0.0,
          high: float = 10.0, width: int = 540, height: int = 380, legend_width: int = 130) -> str:
    """One polygon per series over the categories (in the order they first appear), scaled from low to high."""
    categories: list[str] = []
    for s in series:
        categories += [c for c in s.values if c not in categories]
    cx, cy, radius = 210.0, height / 2 + 12, min(height / 2 - 50, 140.0)
    n = max(len(categories), 1)

    def point(i: int, value: float) -> tuple[float, float]:
        angle = -math.pi / 2 + 2 * math.pi * i / n
        r = radius * (min(max(value, low), high) - low) / (high - low)
        return cx + r * math.cos(angle), cy + r * math.sin(angle)

    parts = [f'<svg id="{escape(svg_id)}" class="plot" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
             f'<text x="20" y="22" {_FONT} font-size="15" fill="{_INK}">{escape(title)}</text>']
    for tick in _ticks(low, high)[1:]:
        ring = " ".join(f"{x:.1f},{y:.1f}" for x, y in (point(i, tick) for i in range(n)))
        parts.append(f'<polygon points="{ring}" fill="none" stroke="{_GRID}"/>')
    for i, name in enumerate(categories):
        x, y = point(i, high)
        lx, ly = point(i, high + (high - low) * 0.13)
        anchor = "middle" if abs(lx - cx) < 20 else "start" if lx > cx else "end"
        parts.append(f'<line x1="{cx:.1f}" y1="{cy:.1f}" x2="{x:.1f}" y2="{y:.1f}" stroke="{_GRID}"/>')
        parts.append(f'<text x="{lx:.1f}" y="{ly + 4:.1f}" {_FONT} text-anchor="{anchor}" fill="{_INK}">'
                     f'{escape(name)}</text>')
    for s in series:
        vertices = [point(i, s.values.get(c, (None,))[0] or low) for i, c in enumerate(categories)]
        shape = " ".join(f"{x:.1f},{y:.1f}" for x, y in vertices)
        parts.append(f'<g class="series" data-label="{escape(s.label)}">')
        parts.append(f'<polygon points="{shape}" fill="{s.color}" fill-opacity="0.12" stroke="{s.color}" '
                     f'stroke-width="3"/>')
        parts.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="{s.color}"/>' for x, y in vertices)
        parts.append("</g>")
    parts.extend(_legend(series, width - legend_width, 50))
    parts.append("</svg>")
    return "\n".join(parts)
