"""Charts as SVG drawn on the server: a line chart of a KPI over time and grouped bars (actual
against candidate). No JavaScript and no CDN: the page, its print and its PDF show the same
picture, and a test reads the drawn shapes. Coordinates are computed from the Decimal values
(money stays Decimal; only the pixel positions are rounded)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from html import escape

from markupsafe import Markup

PALETTE = ("#1f6fb2", "#d9822b", "#2e9e5b", "#b23b3b", "#7a4fb2", "#5c6b73")
WIDTH, HEIGHT = 580, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 28, 28, 46


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[Decimal | None]


def _px(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _nice_max(top: Decimal) -> Decimal:
    """A round upper bound of the axis (1, 2, 2.5 or 5 times a power of ten) at or above `top`."""
    if top <= 0:
        return Decimal(1)
    exponent = top.adjusted()
    for step in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10)):
        bound = step.scaleb(exponent)
        if bound >= top:
            return bound
    return Decimal(10).scaleb(exponent)  # pragma: no cover - the loop ends at 10^(e+1) >= top


def _label(value: Decimal, percent: bool) -> str:
    if percent:
        return f"{(value * 100).quantize(Decimal(1))}%"
    if value >= 10_000:
        return f"{(value / 10_000).normalize():f}万"
    return f"{value.normalize():f}"


def _frame(title: str, axis_max: Decimal, percent: bool) -> list[str]:
    plot_h = Decimal(HEIGHT - TOP - BOTTOM)
    out = [f'<text class="chart-title" x="{LEFT}" y="16">{escape(title)}</text>']
    for i in range(5):
        value = axis_max * i / 4
        y = Decimal(HEIGHT - BOTTOM) - plot_h * i / 4
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_px(y)}" y2="{_px(y)}"/>')
        out.append(f'<text class="tick" x="{LEFT - 6}" y="{_px(y + 4)}" text-anchor="end">'
                   f'{escape(_label(value, percent))}</text>')
    return out


def _text_width(text: str) -> int:
    """Roughly how wide `text` is at the legend's 11px (a CJK glyph is about twice a Latin one)."""
    return sum(11 if ord(ch) > 0x2E80 else 6 for ch in text)


def _legend(series: Sequence[Series]) -> tuple[list[str], int]:
    """The legend below the plot, wrapped into rows; returns its shapes and the rows it took."""
    out, x, row = [], LEFT, 0
    for i, s in enumerate(series):
        width = 24 + _text_width(s.name)
        if x > LEFT and x + width > WIDTH - RIGHT:
            x, row = LEFT, row + 1
        y = HEIGHT - 14 + 16 * row
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text class="legend" x="{x + 14}" y="{y + 9}">{escape(s.name)}</text>')
        x += width
    return out, row + 1


def _svg(body: list[str], series: Sequence[Series], title: str) -> Markup:
    legend, rows = _legend(series)
    height = HEIGHT + 16 * (rows - 1)
    return Markup(f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {WIDTH} {height}" '
                  f'width="{WIDTH}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
                  f'<title>{escape(title)}</title>{"".join(body + legend)}</svg>')


def line_chart(title: str, labels: Sequence[str], series: Sequence[Series], *, percent: bool = False) -> Markup:
    """One line per series over `labels` (periods); a period without a value breaks the line."""
    values = [v for s in series for v in s.values if v is not None]
    axis_max = _nice_max(max(values, default=Decimal(0)))
    plot_w, plot_h = Decimal(WIDTH - LEFT - RIGHT), Decimal(HEIGHT - TOP - BOTTOM)
    step = plot_w / max(len(labels) - 1, 1)
    body = _frame(title, axis_max, percent)
    every = max(1, len(labels) // 8)
    for i, label in enumerate(labels):
        if i % every == 0:
            x = Decimal(LEFT) + step * i
            body.append(f'<text class="tick" x="{_px(x)}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
                        f'{escape(label)}</text>')
    for n, s in enumerate(series):
        colour = PALETTE[n % len(PALETTE)]
        points = [(Decimal(LEFT) + step * i, Decimal(HEIGHT - BOTTOM) - plot_h * v / axis_max)
                  for i, v in enumerate(s.values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{_px(x)},{_px(y)}" for x, y in points)
            body.append(f'<polyline class="series" fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for (x, y), v in zip(points, [v for v in s.values if v is not None], strict=True):
            body.append(f'<circle class="point" cx="{_px(x)}" cy="{_px(y)}" r="3" fill="{colour}">'
                        f'<title>{escape(s.name)}: {escape(_label(v, percent) if percent else f"{v:,.2f}")}</title>'
                        '</circle>')
    return _svg(body, series, title)


def bar_chart(title: str, groups: Sequence[str], series: Sequence[Series], *, percent: bool = False) -> Markup:
    """Grouped bars: for each group one bar per series (e.g. actual and candidate per fund)."""
    values = [v for s in series for v in s.values if v is not None]
    axis_max = _nice_max(max(values, default=Decimal(0)))
    plot_w, plot_h = Decimal(WIDTH - LEFT - RIGHT), Decimal(HEIGHT - TOP - BOTTOM)
    slot = plot_w / max(len(groups), 1)
    bar = slot * Decimal("0.8") / max(len(series), 1)
    body = _frame(title, axis_max, percent)
    for g, group in enumerate(groups):
        x0 = Decimal(LEFT) + slot * g + slot * Decimal("0.1")
        body.append(f'<text class="tick" x="{_px(x0 + slot * Decimal("0.4"))}" y="{HEIGHT - BOTTOM + 16}" '
                    f'text-anchor="middle">{escape(group)}</text>')
        for n, s in enumerate(series):
            value = s.values[g] if g < len(s.values) else None
            if value is None:
                continue
            h = plot_h * max(value, Decimal(0)) / axis_max
            text = _label(value, percent) if percent else f"{value:,.2f}"
            body.append(f'<rect class="bar" x="{_px(x0 + bar * n)}" y="{_px(Decimal(HEIGHT - BOTTOM) - h)}" '
                        f'width="{_px(bar - 2)}" height="{_px(h)}" fill="{PALETTE[n % len(PALETTE)]}">'
                        f'<title>{escape(s.name)} {escape(group)}: {escape(text)}</title></rect>')
    return _svg(body, series, title)
