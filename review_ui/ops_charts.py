"""Small charts drawn on the server as inline SVG: no chart library, no CDN, nothing the CSP has to allow.

Colours come from classes in `static/ops.css` and `static/supervisor.css` (an inline `style` would be refused by
the CSP).

>>> svg = sparkline([0, 2, 4], "frames/s")
>>> svg.startswith('<svg class="spark"'), 'points="0.0,30.0 80.0,16.0 160.0,2.0"' in svg
(True, True)
>>> "<script" in sparkline([1], '<script>alert(1)</script>')
False
>>> 'class="bar-value" x="150" y="4" width="153.0"' in bars([("filed", 2.0, 4.0)], "hours (mean, p90)")
True
>>> '<rect class="col-value" x="6" y="14.0" width="28" height="88.0"/>' in columns([3], ["03-02"], "decisions")
True
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 160
HEIGHT = 32
PAD = 2  # keeps the line's stroke inside the box at its top and bottom


def sparkline(values: Sequence[float], label: str, top: float | None = None) -> Markup:
    """A line over `values` (oldest first) scaled to `top` (default: their maximum), with the area under it
    shaded; fewer than two values draw the baseline only. `label` is the chart's accessible name."""
    base = HEIGHT - PAD
    parts = [f'<line class="spark-base" x1="0" y1="{base}" x2="{WIDTH}" y2="{base}"/>']
    if len(values) >= 2:
        scale = top if top is not None and top > 0 else max(max(values), 1e-9)
        step = WIDTH / (len(values) - 1)
        points = " ".join(
            f"{i * step:.1f},{base - min(max(v, 0.0), scale) / scale * (HEIGHT - 2 * PAD):.1f}"
            for i, v in enumerate(values)
        )
        parts.append(f'<polygon class="spark-area" points="0,{base} {points} {WIDTH},{base}"/>')
        parts.append(f'<polyline class="spark-line" points="{points}"/>')
    name = escape(label)
    return Markup(
        f'<svg class="spark" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-label="{name}"><title>{name}</title>{"".join(parts)}</svg>'
    )


BARS_WIDTH = 480
BAR_ROW = 24
BAR_NAME = 150  # the names' column, right-aligned against the bars
BAR_PAD = 24  # room at the right so the longest bar does not touch the edge


def bars(rows: Sequence[tuple[str, float, float]], label: str) -> Markup:
    """Horizontal bars, one row per (name, value, outer): `value` drawn solid over a paler bar reaching `outer` (a
    mean over its 90th percentile), all scaled to the largest `outer`. `label` is the chart's accessible name."""
    top = max((max(value, outer) for _, value, outer in rows), default=0.0) or 1.0
    span = BARS_WIDTH - BAR_NAME - BAR_PAD
    parts = []
    for i, (name, value, outer) in enumerate(rows):
        y = i * BAR_ROW
        parts.append(
            f'<text class="bar-name" x="{BAR_NAME - 6}" y="{y + 16}" text-anchor="end">{escape(name)}</text>'
            f'<rect class="bar-outer" x="{BAR_NAME}" y="{y + 4}" width="{max(outer, 0.0) / top * span:.1f}" '
            f'height="{BAR_ROW - 8}"/>'
            f'<rect class="bar-value" x="{BAR_NAME}" y="{y + 4}" width="{max(value, 0.0) / top * span:.1f}" '
            f'height="{BAR_ROW - 8}"/>'
        )
    height = max(len(rows), 1) * BAR_ROW
    return _chart("bars", BARS_WIDTH, height, label, "".join(parts))


COLUMN_W = 40
COLUMNS_H = 120
COLUMN_FOOT = 18  # room for the names under the columns
COLUMN_HEAD = 14  # room for the figures over them


def columns(values: Sequence[int], names: Sequence[str], label: str) -> Markup:
    """Vertical columns, one per value with its figure above and its name below (days, oldest first)."""
    top = max(values, default=0) or 1
    base = COLUMNS_H - COLUMN_FOOT
    parts = [f'<line class="spark-base" x1="0" y1="{base}" x2="{len(values) * COLUMN_W}" y2="{base}"/>']
    for i, (value, name) in enumerate(zip(values, names, strict=True)):
        h = value / top * (base - COLUMN_HEAD)
        x = i * COLUMN_W
        middle = x + COLUMN_W / 2
        parts.append(
            f'<rect class="col-value" x="{x + 6}" y="{base - h:.1f}" width="{COLUMN_W - 12}" height="{h:.1f}"/>'
            f'<text class="col-figure" x="{middle}" y="{base - h - 3:.0f}" text-anchor="middle">{value}</text>'
            f'<text class="col-name" x="{middle}" y="{COLUMNS_H - 4}" text-anchor="middle">{escape(name)}</text>'
        )
    return _chart("columns", max(len(values), 1) * COLUMN_W, COLUMNS_H, label, "".join(parts))


def _chart(kind: str, width: float, height: float, label: str, body: str) -> Markup:
    name = escape(label)
    return Markup(
        f'<svg class="{kind}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{name}"><title>{name}</title>{body}</svg>'
    )
