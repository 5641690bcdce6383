"""Small charts drawn on the server as inline SVG: no chart library, no CDN, nothing the CSP has to allow.

Colours come from classes in `static/ops.css` (an inline `style` would be refused by the CSP).

>>> svg = sparkline([0, 2, 4], "frames/s")
>>> svg.startswith('<svg class="spark"'), 'points="0.0,30.0 80.0,16.0 160.0,2.0"' in svg
(True, True)
>>> "<script" in sparkline([1], '<script>alert(1)</script>')
False
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
