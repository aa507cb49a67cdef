"""Two small charts as inline SVG (gr.HTML), where gradio's plots fall short:

- `interval_chart`: each model's rating with its 95% interval, best first (gradio 6's plots draw no error bars);
- `grouped_bars`: scores grouped by data set and metric, one colour per model, the value written on each bar
  (gradio's BarPlot stacks bars that share an x value and writes no values).

Plain SVG scales with the page (viewBox, width 100%), so both stay readable on a phone; every text is escaped.
"""

from __future__ import annotations

import html
import math

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
COLOURS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
FONT = 'font-family="system-ui, \'Noto Sans CJK SC\', sans-serif"'


def _text(x, y, text, size=12, anchor="start", weight="normal", fill="#222") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" font-weight="{weight}" '
            f'fill="{fill}" {FONT}>{html.escape(str(text))}</text>')


def interval_chart(rows: list[tuple[str, float, float, float]], axis_label: str, caption: str) -> str:
    """rows: (model, rating, low, high), drawn best first; a NaN interval (too few votes) draws the dot alone."""
    if not rows:
        return ""
    rows = sorted(rows, key=lambda r: -r[1])
    values = [v for _, r, lo, hi in rows for v in (r, lo, hi) if not math.isnan(v)]
    low, high = min(values), max(values)
    pad = max(10.0, (high - low) * 0.08)
    low, high = low - pad, high + pad
    width, left, right, row_h, top = 420, 130, 24, 30, 28
    scale = (width - left - right) / (high - low)

    def x(v: float) -> float:
        return left + (v - low) * scale

    parts = [_text(left, 16, caption, 13, weight="bold")]
    for i, (model, rating, lo, hi) in enumerate(rows):
        y = top + i * row_h + row_h / 2
        parts.append(_text(left - 8, y + 4, model if len(model) <= 20 else model[:19] + "…", 12, "end"))
        if not (math.isnan(lo) or math.isnan(hi)):
            parts.append(f'<line x1="{x(lo):.1f}" y1="{y}" x2="{x(hi):.1f}" y2="{y}" stroke="#0072B2" '
                         f'stroke-width="3" stroke-linecap="round" opacity="0.55"/>')
        parts.append(f'<circle cx="{x(rating):.1f}" cy="{y}" r="5" fill="#0072B2"/>')
        parts.append(_text(x(rating), y - 8, f"{rating:.0f}", 11, "middle"))
    bottom = top + len(rows) * row_h
    for tick in _ticks(low, high):
        parts.append(f'<line x1="{x(tick):.1f}" y1="{top}" x2="{x(tick):.1f}" y2="{bottom}" stroke="#ddd"/>')
        parts.append(_text(x(tick), bottom + 14, f"{tick:g}", 11, "middle", fill="#555"))
    parts.append(_text((left + width - right) / 2, bottom + 32, axis_label, 12, "middle"))
    return _svg(width, bottom + 40, parts, "rating-chart", min_width=0)  # a phone: scaled to fit, no scrolling


def grouped_bars(groups: list[str], series: list[str], values: dict[tuple[str, str], float], axis_label: str) -> str:
    """One group of bars per entry of `groups` (e.g. "set · metric"), one bar per `series` (model) in its colour,
    the value above each bar; a legend on top. values[(group, series)]; a missing pair leaves a gap."""
    if not groups or not series:
        return ""
    top_value = max([v for v in values.values() if not math.isnan(v)] + [1.0])
    ceiling = 100.0 if top_value <= 100 else top_value * 1.1
    bar, gap = 34, 30
    group_w = bar * len(series) + gap
    left, plot_h = 44, 220
    width = max(560, left + group_w * len(groups) + 10)
    per_line = max(1, (width - left) // 180)
    legend_h = 22 * math.ceil(len(series) / per_line) + 10
    base = legend_h + plot_h
    parts = []
    for i, name in enumerate(series):  # the legend on top, as many per line as fit
        lx, ly = left + (i % per_line) * 180, 14 + (i // per_line) * 22
        parts.append(f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{COLOURS[i % len(COLOURS)]}"/>')
        parts.append(_text(lx + 18, ly, name if len(name) <= 24 else name[:23] + "…", 12))
    for tick in _ticks(0, ceiling):
        y = base - tick / ceiling * plot_h
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(_text(left - 6, y + 4, f"{tick:g}", 10, "end", fill="#555"))
    chars = max(6, int((group_w - 6) / 6.5))  # what fits under a group at 11 px
    for g, group in enumerate(groups):
        gx = left + g * group_w + gap / 2
        for s, name in enumerate(series):
            value = values.get((group, name))
            if value is None or math.isnan(value):
                continue
            h = max(1.0, value / ceiling * plot_h)
            bx = gx + s * bar
            parts.append(f'<rect x="{bx:.1f}" y="{base - h:.1f}" width="{bar - 4}" height="{h:.1f}" '
                         f'fill="{COLOURS[s % len(COLOURS)]}"><title>{html.escape(f"{name} · {group}: {value:g}")}'
                         f'</title></rect>')
            parts.append(_text(bx + (bar - 4) / 2, base - h - 4, f"{value:.1f}", 10, "middle"))
        # "set · metric" on two lines under its group: the set, then the metric
        for line_no, line in enumerate(group.split(" · ", 1)):
            line = line if len(line) <= chars else line[:chars - 1] + "…"
            parts.append(_text(gx + (group_w - gap) / 2, base + 16 + 14 * line_no, line, 11, "middle"))
    parts.append(f'<line x1="{left}" y1="{base}" x2="{width}" y2="{base}" stroke="#888"/>')
    parts.append(_text(12, legend_h + plot_h / 2, axis_label, 11, "middle"))
    return _svg(width, base + 40, parts, "grouped-bars", min_width=560)


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    step = 10 ** math.floor(math.log10(max(high - low, 1e-9) / count))
    for factor in (1, 2, 5, 10):
        if (high - low) / (step * factor) <= count:
            step *= factor
            break
    first = math.ceil(low / step) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step) + 1)]


def _svg(width: float, height: float, parts: list[str], css_class: str, min_width: float) -> str:
    # The wrapper scrolls sideways when many bars would not fit a phone's width instead of shrinking the text.
    return (f'<div style="overflow-x:auto"><svg class="{css_class}" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'style="width:100%;min-width:{min_width:.0f}px;max-width:{width:.0f}px" role="img" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg></div>')
