"""Charts drawn as inline SVG on the server: no script, no CDN, the same markup in pages, PDFs and
e-mails. Colours are presentation attributes (not CSS classes) so a chart renders anywhere."""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

from api.reports.data import DayPoint

NEG, NEU, POS = "#c0392b", "#8a94a3", "#1e8449"
AXIS, GRID, TEXT, LINE = "#5b6675", "#e3e7ec", "#1c2430", "#0b5cad"
FONT = 'font-family="Noto Sans, DejaVu Sans, Arial, sans-serif"'


def nice_max(value: float) -> float:
    """A round axis maximum ≥ value (1, 2, 2.5, 5 × 10^k)."""
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return float(step * exp)
    return float(10 * exp)


def _fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _label_every(n: int, room: float, min_px: float = 34) -> int:
    return max(1, math.ceil(min_px / max(room, 1e-9))) if n else 1


def volume_chart(points: Sequence[DayPoint], *, title: str, names: dict[str, str],
                 width: int = 720, height: int = 220) -> Markup:
    """Mentions per day, stacked by sentiment (negative at the bottom), with a y axis and dates."""
    left, right, top, bottom = 40, 8, 12, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    ymax = nice_max(max((p.total for p in points), default=0))
    n = max(len(points), 1)
    slot = plot_w / n
    bar = max(1.0, slot * 0.75)
    out = [f'<svg class="chart volume" viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(title)}" {FONT} font-size="11">',
           f"<title>{escape(title)}</title>"]
    for i in range(5):
        v = ymax * i / 4
        y = top + plot_h - plot_h * i / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="{AXIS}">{_fmt(v)}</text>')
    every = _label_every(len(points), slot)
    for i, p in enumerate(points):
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_h
        tip = escape(f"{p.day:%d/%m}: {p.total} — {names['negative']} {p.negative}, "
                     f"{names['neutral']} {p.neutral}, {names['positive']} {p.positive}")
        out.append(f'<g data-day="{p.day.isoformat()}" data-total="{p.total}"><title>{tip}</title>')
        for count, colour in ((p.negative, NEG), (p.neutral, NEU), (p.positive, POS)):
            if count:
                h = plot_h * count / ymax
                y -= h
                out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colour}"/>')
        out.append("</g>")
        if i % every == 0:
            out.append(f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
                       f'fill="{AXIS}">{p.day:%d/%m}</text>')
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="{AXIS}"/>')
    lx = left
    for key, colour in (("negative", NEG), ("neutral", NEU), ("positive", POS)):
        out.append(f'<rect x="{lx}" y="{height - 14}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{lx + 14}" y="{height - 5}" fill="{TEXT}">{escape(names[key])}</text>')
        lx += 24 + 7 * len(names[key])
    out.append("</svg>")
    return Markup("".join(out))


def sentiment_chart(points: Sequence[DayPoint], *, title: str, axis_label: str,
                    width: int = 720, height: int = 200) -> Markup:
    """Net sentiment per day, (positive − negative) / mentions in [−1, 1], as a line with dots;
    days without mentions leave a gap."""
    left, right, top, bottom = 40, 8, 12, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(points), 1)
    slot = plot_w / n

    def y_of(v: float) -> float:
        return top + plot_h * (1 - (v + 1) / 2)

    out = [f'<svg class="chart sentiment" viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(title)}" {FONT} font-size="11">',
           f"<title>{escape(title)}</title>"]
    for v in (-1.0, -0.5, 0.0, 0.5, 1.0):
        y = y_of(v)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                   f'stroke="{AXIS if v == 0 else GRID}"/>')
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="{AXIS}">{v:+.1f}</text>')
    segments: list[list[str]] = [[]]
    dots: list[str] = []
    for i, p in enumerate(points):
        x = left + i * slot + slot / 2
        if not p.total:
            if segments[-1]:
                segments.append([])
            continue
        net = p.net
        y = y_of(net)
        segments[-1].append(f"{x:.1f},{y:.1f}")
        colour = NEG if net < 0 else POS if net > 0 else NEU
        dots.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}" data-day="{p.day.isoformat()}" '
                    f'data-net="{net:.3f}"><title>{p.day:%d/%m}: {net:+.2f} ({p.total})</title></circle>')
    for seg in segments:
        if len(seg) > 1:
            out.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{LINE}" stroke-width="2"/>')
    out.extend(dots)
    every = _label_every(len(points), slot)
    for i, p in enumerate(points):
        if i % every == 0:
            out.append(f'<text x="{left + i * slot + slot / 2:.1f}" y="{height - 8}" text-anchor="middle" '
                       f'fill="{AXIS}">{p.day:%d/%m}</text>')
    out.append(f'<text x="{left + 4}" y="{top + 10}" fill="{AXIS}">{escape(axis_label)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def sparkline(values: Sequence[int], *, width: int = 96, height: int = 22, label: str = "") -> Markup:
    """A tiny line of daily counts (for tables)."""
    if not values:
        return Markup("")
    top = max(max(values), 1)
    step = width / max(len(values) - 1, 1)
    pts = " ".join(f"{i * step:.1f},{height - 2 - (height - 4) * v / top:.1f}" for i, v in enumerate(values))
    return Markup(f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
                  f'role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
                  f'<title>{escape(label)}</title><polyline points="{pts}" fill="none" stroke="{LINE}" '
                  f'stroke-width="1.5"/></svg>')


def comparison_bars(rows: Sequence[tuple[str, int, int]], *, title: str, now_label: str,
                    before_label: str, width: int = 720) -> Markup:
    """Horizontal bars, this period against the previous one, one row per (label, now, before)."""
    row_h, left, right = 26, 230, 60
    height = row_h * len(rows) + 30
    top = max((max(a, b) for _, a, b in rows), default=0) or 1
    span = width - left - right
    out = [f'<svg class="chart bars" viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(title)}" {FONT} font-size="11">',
           f"<title>{escape(title)}</title>"]
    for i, (label, now, before) in enumerate(rows):
        y = 6 + i * row_h
        out.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end" fill="{TEXT}">{escape(label)}</text>')
        out.append(f'<rect x="{left}" y="{y + 2}" width="{span * before / top:.1f}" height="8" fill="{GRID}">'
                   f"<title>{escape(before_label)}: {before}</title></rect>")
        out.append(f'<rect x="{left}" y="{y + 11}" width="{span * now / top:.1f}" height="10" fill="{LINE}">'
                   f"<title>{escape(now_label)}: {now}</title></rect>")
        delta = now - before
        colour = NEG if delta > 0 else POS if delta < 0 else AXIS
        out.append(f'<text x="{left + span * max(now, before) / top + 6:.1f}" y="{y + 20}" fill="{colour}">'
                   f"{now} ({delta:+d})</text>")
    ly = height - 10
    out.append(f'<rect x="{left}" y="{ly - 8}" width="10" height="8" fill="{LINE}"/>'
               f'<text x="{left + 14}" y="{ly}" fill="{TEXT}">{escape(now_label)}</text>'
               f'<rect x="{left + 140}" y="{ly - 8}" width="10" height="8" fill="{GRID}"/>'
               f'<text x="{left + 154}" y="{ly}" fill="{TEXT}">{escape(before_label)}</text>')
    out.append("</svg>")
    return Markup("".join(out))
