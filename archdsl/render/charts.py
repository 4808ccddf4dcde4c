"""Small SVG charts for reports: line charts of training curves, text bars for Markdown.

No plotting library: a chart is a few dozen SVG elements built here. Every piece of
text that reaches a chart (titles, series names, tick labels) goes through
`markupsafe.escape`, so a chart is `Markup` that a template can inline as is; numbers
are formatted by this module. Each chart is a complete SVG document (it has the
`xmlns`), so the same text can be inlined in HTML or written to a `.svg` file.

A chart costs time linear in its points, and a long series is downsampled to at most
`MAX_POINTS` points (`downsample`: every extreme kept), which the chart says under its title.
"""
from __future__ import annotations

import itertools
import math
import sys
from dataclasses import dataclass, field
from typing import Callable, Sequence

from markupsafe import Markup, escape

FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"
TEXT, MUTED, GRID, AXIS = "#111827", "#6b7280", "#e5e7eb", "#9ca3af"
# train / val / a third series: blue and orange stay apart for colour-blind readers
COLOURS = ("#2563eb", "#ea580c", "#7c3aed", "#059669")
MAX_POINTS = 600  # points a line of a chart keeps at most; a longer series is downsampled


@dataclass
class Series:
    name: str
    points: Sequence[tuple[float, float | None]]  # (x, y); y None is a gap in the line
    colour: str = COLOURS[0]
    dashed: bool = False


@dataclass
class Marker:
    """A vertical line at `x` with a short label, e.g. the best epoch."""
    x: float
    label: str
    colour: str = MUTED


@dataclass
class _Frame:
    width: int
    height: int
    left: int = 58
    right: int = 16
    top: int = 40
    bottom: int = 44
    x_range: tuple[float, float] = (0.0, 1.0)
    y_range: tuple[float, float] = (0.0, 1.0)
    parts: list[str] = field(default_factory=list)

    def x(self, value: float) -> float:
        return self.left + _fraction(value, self.x_range) * (self.width - self.left - self.right)

    def y(self, value: float) -> float:
        return self.height - self.bottom - _fraction(value, self.y_range) * (self.height - self.top - self.bottom)


def _fraction(value: float, bounds: tuple[float, float]) -> float:
    """Where `value` lies in [lo, hi], 0 to 1. Scaled first: hi - lo of finite values can overflow (1e308 and
    -1e308) or underflow."""
    lo, hi = bounds
    scale = max(abs(lo), abs(hi)) or 1.0
    lo_s, hi_s = lo / scale, hi / scale
    return (value / scale - lo_s) / (hi_s - lo_s) if hi_s > lo_s else 0.5


def line_chart(series: Sequence[Series], *, title: str, x_label: str = "epoch", y_label: str = "",
               y_format: Callable[[float], str] | None = None, value_format: Callable[[float], str] | None = None,
               markers: Sequence[Marker] = (), width: int = 380, height: int = 250,
               y_zero: bool = False, y_scale: str = "linear", max_points: int = MAX_POINTS) -> Markup:
    """A line chart of `series` over a shared x axis (integer ticks when x is an epoch).

    `y_format` formats tick labels, `value_format` the values in each point's tooltip.
    `y_zero` keeps 0 on the y axis (for accuracy; a loss reads better zoomed in).
    `y_scale="auto"` draws the y axis logarithmic when every value is positive and they span
    `LOG_SPREAD` times or more (a loss with an outlier), and the chart says so; else linear.
    A series longer than `max_points` is drawn downsampled (`downsample`), and the chart says so.
    """
    longest = max((len(s.points) for s in series), default=0)
    series = [Series(s.name, downsample(s.points, max_points), s.colour, s.dashed) for s in series]
    xs = [x for s in series for x, _ in s.points]
    ys = [y for s in series for _, y in s.points if _finite(y)]
    y_format = y_format or _plain
    value_format = value_format or y_format
    f = _Frame(width, height)
    f.parts.append(_text(12, 22, title, size=14, weight="600"))
    log = y_scale == "auto" and _wide_positive(ys)
    subtitle = [f"downsampled from {longest:,} {x_label}s"] if longest > max_points else []
    if log:
        subtitle.insert(0, "log scale")
    if subtitle:
        f.parts.append(_text(12, 35, " · ".join(subtitle), colour=MUTED, size=10))
        f.top += 10  # the top tick's label clear of the subtitle
    if not xs or not ys:
        f.parts.append(_text(width / 2, height / 2, "no values", anchor="middle", colour=MUTED))
        return _svg(f, title)

    x_lo, x_hi = min(xs), max(xs)
    if x_lo == x_hi:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    x_ticks = nice_ticks(x_lo, x_hi, 6, integer=True)
    f.x_range = (x_lo, x_hi)
    # where a value sits on the axis: its logarithm on a log scale, itself on a linear one
    at = math.log10 if log else float
    if log:
        y_ticks = log_ticks(min(ys), max(ys))
        f.y_range = (min(at(min(ys)), at(y_ticks[0])), max(at(max(ys)), at(y_ticks[-1])))
    else:
        y_lo, y_hi = min(ys), max(ys)
        if y_zero:
            y_lo = min(0.0, y_lo)
        size = max(abs(y_lo), abs(y_hi))
        if y_hi - y_lo <= size * 1e-9 or size < 1e-290:  # flat, or too close to tell apart (0 and 5e-324)
            pad = size * 0.1 if size >= 1e-290 else 1.0
            y_lo, y_hi = max(y_lo - pad, -_MAX), min(y_hi + pad, _MAX)
        y_ticks = nice_ticks(y_lo, y_hi, 5)
        f.y_range = (min(y_lo, y_ticks[0]), max(y_hi, y_ticks[-1]))
    f.left = max(44, 14 + 7 * max(len(y_format(t)) for t in y_ticks)) + (12 if y_label else 0)  # the y label clear

    plot_right, base = width - f.right, height - f.bottom
    _axes(f, [t for t in x_ticks if x_lo <= t <= x_hi], y_ticks, x_label, y_label, _plain, y_format, at)

    for m in markers:
        if x_lo <= m.x <= x_hi:
            x = f.x(m.x)
            f.parts.append(f'<line x1="{x:.1f}" y1="{f.top - 4}" x2="{x:.1f}" y2="{base}" stroke="{m.colour}" '
                           f'stroke-dasharray="3 3"/>')
            anchor = "end" if x > (f.left + plot_right) / 2 else "start"
            dx = -4 if anchor == "end" else 4  # at the foot of the line: the legend is at the top
            f.parts.append(_text(x + dx, base - 6, m.label, anchor=anchor, colour=m.colour, size=11))

    n_points = max(len(s.points) for s in series)
    for s in series:
        for run in _runs(s.points):
            path = " ".join(f"{'M' if i == 0 else 'L'}{f.x(x):.1f},{f.y(at(y)):.1f}" for i, (x, y) in enumerate(run))
            dash = ' stroke-dasharray="6 4"' if s.dashed else ""
            f.parts.append(f'<path d="{path}" fill="none" stroke="{s.colour}" stroke-width="2" '
                           f'stroke-linejoin="round" stroke-linecap="round"{dash}/>')
        # a dot a point (few points) or an invisible target, both with a tooltip
        visible = n_points <= 40 or sum(1 for _, y in s.points if _finite(y)) == 1
        for x, y in s.points:
            if not _finite(y):
                continue
            tip = f"{s.name}, {x_label} {_plain(x)}: {value_format(y)}"
            style = f'fill="{s.colour}"' if visible else 'fill="transparent"'
            f.parts.append(f'<circle cx="{f.x(x):.1f}" cy="{f.y(at(y)):.1f}" r="{2.6 if visible else 4}" {style}>'
                           f'<title>{escape(tip)}</title></circle>')

    _legend(f, series)
    return _svg(f, title)


@dataclass
class Point:
    """A point of a scatter chart; `label` is its tooltip (a trial's choices, say)."""
    x: float
    y: float
    label: str


def scatter_chart(groups: Sequence[Series], *, title: str, x_label: str, y_label: str = "",
                  front: Sequence[tuple[float, float]] = (), x_format: Callable[[float], str] | None = None,
                  y_format: Callable[[float], str] | None = None, width: int = 460, height: int = 300) -> Markup:
    """Points in groups (a `Series` each: its name in the legend, its points `Point`s), and `front`, the
    (x, y) corners of a Pareto front, drawn as a step line from the cheapest (x) to the best (y)."""
    points = [p for g in groups for p in g.points if _finite(p.x) and _finite(p.y)]
    x_format, y_format = x_format or _plain, y_format or _plain
    f = _Frame(width, height)
    f.parts.append(_text(12, 22, title, size=14, weight="600"))
    if not points:
        f.parts.append(_text(width / 2, height / 2, "no values", anchor="middle", colour=MUTED))
        return _svg(f, title)
    ranges = []
    for values in ([p.x for p in points], [p.y for p in points]):
        lo, hi = min(values), max(values)
        if hi - lo <= max(abs(lo), abs(hi)) * 1e-9:
            pad = abs(hi) * 0.1 or 1.0
            lo, hi = lo - pad, hi + pad
        ticks = nice_ticks(lo, hi, 5)
        ranges.append((ticks, (min(lo, ticks[0]), max(hi, ticks[-1]))))
    (x_ticks, f.x_range), (y_ticks, f.y_range) = ranges
    f.left = max(44, 14 + 7 * max(len(y_format(t)) for t in y_ticks)) + (12 if y_label else 0)  # the y label clear
    _axes(f, x_ticks, y_ticks, x_label, y_label, x_format, y_format, float)
    if front:
        corners = sorted(front)
        steps = [corners[0]] + [c for a, b in itertools.pairwise(corners) for c in ((b[0], a[1]), b)]
        path = " ".join(f"{'M' if i == 0 else 'L'}{f.x(x):.1f},{f.y(y):.1f}" for i, (x, y) in enumerate(steps))
        f.parts.append(f'<path d="{path}" fill="none" stroke="{MUTED}" stroke-width="1.5" stroke-dasharray="4 3"/>')
    for g in groups:
        for p in g.points:
            if _finite(p.x) and _finite(p.y):
                tip = f"{p.label}: {x_label} {x_format(p.x)}, {y_label or 'y'} {y_format(p.y)}"
                f.parts.append(f'<circle cx="{f.x(p.x):.1f}" cy="{f.y(p.y):.1f}" r="3.5" fill="{g.colour}" '
                               f'fill-opacity="0.8"><title>{escape(tip)}</title></circle>')
    _legend(f, groups)
    return _svg(f, title)


def _axes(f: _Frame, x_ticks, y_ticks, x_label: str, y_label: str, x_format, y_format, y_at) -> None:
    """Grid lines with the y ticks' labels, the x ticks and their labels, the x axis and both axes' names;
    `y_at`: where a y value sits on the axis (its logarithm on a log scale)."""
    plot_right, base = f.width - f.right, f.height - f.bottom
    for t in y_ticks:
        y = f.y(y_at(t))
        f.parts.append(f'<line x1="{f.left}" y1="{y:.1f}" x2="{plot_right}" y2="{y:.1f}" stroke="{GRID}"/>')
        f.parts.append(_text(f.left - 6, y + 4, y_format(t), anchor="end", colour=MUTED, size=11))
    for t in x_ticks:
        x = f.x(t)
        f.parts.append(f'<line x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}" stroke="{AXIS}"/>')
        label = x_format(t)
        half = 3.3 * len(label)  # about half its width at size 11: a label at an edge is kept inside the picture
        at, anchor = ((f.width - 2, "end") if x + half > f.width - 2 else (2, "start") if x - half < 2
                      else (x, "middle"))
        f.parts.append(_text(at, base + 17, label, anchor=anchor, colour=MUTED, size=11))
    f.parts.append(f'<line x1="{f.left}" y1="{base}" x2="{plot_right}" y2="{base}" stroke="{AXIS}"/>')
    f.parts.append(_text((f.left + plot_right) / 2, f.height - 8, x_label, anchor="middle", colour=MUTED, size=11))
    if y_label:
        f.parts.append(_text(14, (f.top + base) / 2, y_label, anchor="middle", colour=MUTED, size=11, rotate=True))


def _legend(f: _Frame, series: Sequence[Series]) -> None:
    """Series names top right, right-aligned, each after a short line in its colour."""
    x = f.width - f.right
    for s in reversed(series):
        w = 7 * len(s.name) + 4
        f.parts.append(_text(x, 22, s.name, anchor="end", colour=TEXT, size=12))
        x -= w + 22
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        f.parts.append(f'<line x1="{x}" y1="18" x2="{x + 18}" y2="18" stroke="{s.colour}" stroke-width="2.5"{dash}/>')
        x -= 12


def _runs(points):
    """The unbroken stretches of finite points."""
    run = []
    for x, y in points:
        if _finite(y):
            run.append((x, y))
        elif run:
            yield run
            run = []
    if run:
        yield run


def downsample(points: Sequence[tuple[float, float | None]], limit: int = MAX_POINTS) -> list:
    """At most `limit` of `points`, in order, keeping the shape of the line: the points are cut into
    `limit // 6` buckets of consecutive points, and each bucket keeps its first, last, lowest and
    highest finite point (so every extreme of the series survives: the best epoch is still on the
    chart) and its first and last gap (None), so a gap still breaks the line. Linear in the points;
    a series of at most `limit` points is returned as it is."""
    n = len(points)
    if n <= limit:
        return list(points)
    buckets = max(1, limit // 6)
    out = []
    for b in range(buckets):
        start, stop = b * n // buckets, (b + 1) * n // buckets
        first = last = low = high = gap = gap_last = None
        for i in range(start, stop):
            y = points[i][1]
            if _finite(y):
                if first is None:
                    first = low = high = i
                last = i
                if y < points[low][1]:
                    low = i
                if y > points[high][1]:
                    high = i
            else:
                if gap is None:
                    gap = i
                gap_last = i
        out.extend(points[i] for i in sorted({i for i in (first, last, low, high, gap, gap_last) if i is not None}))
    return out


def _svg(f: _Frame, title: str) -> Markup:
    body = "\n".join(f.parts)
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{f.width}" height="{f.height}" '
                  f'viewBox="0 0 {f.width} {f.height}" role="img" aria-label="{escape(title)}" '
                  f'font-family="{FONT}">\n<rect width="100%" height="100%" fill="white"/>\n{body}\n</svg>')


def _text(x, y, text, *, anchor="start", colour=TEXT, size=12, weight=None, rotate=False) -> str:
    extra = f' font-weight="{weight}"' if weight else ""
    if rotate:
        extra += f' transform="rotate(-90 {x:.1f} {y:.1f})"'
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{colour}" font-size="{size}"{extra}>'
            f'{escape(text)}</text>')


# Why a log axis and not a clipped one, for a loss with an outlier (one epoch's val loss of 150 beside
# training losses near 1): clipping hides a real value behind a note and needs a rule for "outlier";
# a log axis keeps every point where it is and gives each decade the same height, so a training
# loss that halves still visibly falls. Used only when the values span LOG_SPREAD times or more: a
# loss that stays within one decade reads better on a linear axis.
LOG_SPREAD = 10.0


def _wide_positive(ys: Sequence[float]) -> bool:
    """All positive, the largest at least LOG_SPREAD times the smallest (a quotient past float range is inf)."""
    return bool(ys) and min(ys) > 0 and max(ys) / min(ys) >= LOG_SPREAD


def log_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Ticks of a log axis over [lo, hi] (0 < lo < hi): the powers of ten inside it (0.1, 1, 10, 100; every
    n-th past `count`) when there are two or more; else 1, 2 and 5 times them, from the last at or below lo
    to the first at or above hi (the axis then reaches them, as a linear one reaches its round ticks)."""
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    step = max(1, math.ceil((last - first) / count))
    # float("1e309") is inf and float("1e-330") 0, where 10.0 ** 309 raises
    powers = [float(f"1e{k}") for k in range(first, last + 1, step)]
    inside = [t for t in powers if lo <= t <= hi and 0 < t < _MAX]
    if len(inside) >= 2:
        return inside
    candidates = [t for t in (float(f"{m}e{k}") for k in range(first, last + 1) for m in (1, 2, 5))
                  if 0 < t < _MAX]
    below = [t for t in candidates if t <= lo] or candidates[:1]
    above = [t for t in candidates if t >= hi] or candidates[-1:]
    return [t for t in candidates if below[-1] <= t <= above[0]]


def nice_ticks(lo: float, hi: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten.

    Any finite lo < hi gives finite ticks: when the span overflows, underflows or is below the
    precision of the values, the ticks are lo and hi themselves."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi / 2 - lo / 2) / max(1, count - 1) * 2  # halves: hi - lo can overflow
    if not math.isfinite(raw) or raw < 1e-300 or raw <= max(abs(lo), abs(hi)) * 1e-12:
        return [lo, hi]
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    if integer:
        step = max(1, round(step))
    first = math.floor(lo / step + 1e-9)
    ticks = []
    for n in range(first, first + 1000):  # the last tick is the first at or above hi
        ticks.append(float(f"{n * step:.15g}"))  # 15 digits drop float noise (0.30000000000000004)
        if ticks[-1] >= hi - step * 1e-9:
            break
    if not all(map(math.isfinite, ticks)) or len(ticks) > 4 * count:
        return [lo, hi]
    return ticks


_MAX = sys.float_info.max


def _finite(y) -> bool:
    return isinstance(y, (int, float)) and math.isfinite(y)


def _plain(v: float) -> str:
    """A tick value without noise: 5, 0.25, 1e-05."""
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    text = f"{v:.6g}"
    return text


# --- text bars (Markdown) -----------------------------------------------------------------------

_EIGHTHS = " ▏▎▍▌▋▊▉"


def text_bar(fraction: float, width: int = 20) -> str:
    """A bar of block characters, `width` characters for 1.0, in eighths of a character."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    if fraction > 0 and eighths == 0:
        eighths = 1  # something non-zero stays visible
    full, rest = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[rest] if rest else "")
