"""The daily report's charts, drawn here as SVG: no script, no CDN, nothing the page's CSP would refuse.

Each chart is an `<svg role="img">` with a `<title>` and a `<desc>` that says its numbers in words, and
text labels on the bars, so it reads without colour and to a screen reader. Every text is escaped.
Colours are presentation attributes (`fill=`), never `style=`, which the pages' CSP forbids.

Each chart comes in two drawings of the same numbers: a wide one (1000 units across) for a desk and A4, and a
compact one (360 across) laid out for a phone, where the wide one scaled down would make its text a few pixels
high. The page shows one of them by the width of the screen (report.css); times read as m:ss, as everywhere on
the page.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from markupsafe import Markup, escape

from services.pager.report.display import INFORMATION_NAMES, duration_text
from services.pager.report.models import Report

INK, MUTED, GRID, AXIS = "#17202b", "#525e6d", "#e3e8ef", "#9aa6b5"
DANGER = "#a3211a"
# Category colours in the order of the branch's categories: gold for the first VIP line, then blues and greens.
VIP_COLOURS = ("#a87a1f", "#c4902a")
COLOURS = ("#1558b0", "#1b6e45", "#6b4fa0", "#0f7c8c", "#b4532a", "#50607a")
P50_COLOUR, P90_COLOUR = "#8fb3e3", "#1558b0"
PAGES_COLOUR = "#163a66"
WIDTH, COMPACT_WIDTH = 1000, 360


def category_colours(categories: Iterable[Any]) -> dict[str, str]:
    """Give each category (anything with `category` and `vip`) a colour: gold for VIP lines, then a palette by
    order; the daily report and the trends colour a category alike."""
    out, vip, other = {}, 0, 0
    for c in categories:
        if c.vip:
            out[c.category] = VIP_COLOURS[vip % len(VIP_COLOURS)]
            vip += 1
        else:
            out[c.category] = COLOURS[other % len(COLOURS)]
            other += 1
    return out


def nice_ceiling(value: float, ticks: int = 5, *, whole: bool = False) -> tuple[float, float]:
    """Return an axis top at or above value and its tick step (1, 2 or 5 times a power of ten; whole: at least 1)."""
    if value <= 0:
        return 1.0, 1.0
    raw = value / ticks
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))
    if whole:
        step = max(1.0, float(round(step)))
    return float(step * math.ceil(value / step - 1e-9)), float(step)


def _ticks(axis_top: float, step: float) -> list[float]:
    return [i * step for i in range(round(axis_top / step) + 1)]


def _num(value: float) -> str:
    return f"{value:g}"


def _minutes(value: float) -> str:
    """Write an axis value in minutes as m:ss, the page's unit of time."""
    return duration_text(value * 60)


def svg_text(x: float, y: float, content: str, *, anchor: str = "start", size: int = 13, fill: str = INK,
          weight: str = "normal", cls: str = "") -> str:
    extra = f' font-weight="{weight}"' if weight != "normal" else ""
    klass = f' class="{cls}"' if cls else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{fill}"{extra}{klass}>'
            f"{escape(content)}</text>")


def svg_chart(chart_id: str, width: int, height: float, title: str, desc: str, body: Sequence[str]) -> Markup:
    klass = "chart chart-compact" if width == COMPACT_WIDTH else "chart chart-wide"
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="{klass}" id="{escape(chart_id)}" '
            f'viewBox="0 0 {width} {height:.0f}" width="{width}" height="{height:.0f}" role="img" '
            f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc">'
            f'<title id="{escape(chart_id)}-title">{escape(title)}</title>'
            f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>')
    return Markup(head + "".join(body) + "</svg>")


def text_width(text: str, size: float) -> float:
    """Estimate a text's width: a CJK character is one em, a Latin one a little over half."""
    return sum(size if ord(ch) >= 0x2E80 else size * 0.56 for ch in text)


def svg_legend(items: Sequence[tuple[str, str]], x: float, y: float, right: float,
            size: int = 13) -> tuple[list[str], float]:
    """Draw a legend from (x, y), going to a new line before right; return it and the baseline of its last line."""
    out, start = [], x
    for label, colour in items:
        wide = 17 + text_width(label, size)
        if x > start and x + wide > right:
            x, y = start, y + size + 7
        out.append(f'<rect x="{x:.1f}" y="{y - size + 3:.1f}" width="12" height="12" rx="2" fill="{colour}"/>')
        out.append(svg_text(x + 17, y, label, size=size))
        x += wide + 18
    return out, y


def svg_name(x: float, y: float, name: str, name_en: str, size: int) -> list[str]:
    """Write a Chinese name in bold with its English name after it, smaller and muted."""
    return [svg_text(x, y, name, size=size, weight="bold"),
            svg_text(x + text_width(name, size) + 5, y, name_en, size=size - 2, fill=MUTED)]


def svg_chart_id(base: str, compact: bool) -> str:
    return f"{base}-compact" if compact else base


def _empty(chart_id: str, title: str, width: int) -> Markup:
    height = 120
    return svg_chart(chart_id, width, height, title, "当日无数据 No data for this day",
                [svg_text(width / 2, height / 2, "当日无数据 · No data for this day", anchor="middle", size=14,
                       fill=MUTED)])


def tickets_by_hour(report: Report, *, compact: bool = False) -> Markup:
    """Draw the tickets issued per hour as bars stacked by category, with each hour's total on top."""
    chart_id, title = svg_chart_id("chart-hours", compact), "每小时取号 Tickets issued per hour"
    width = COMPACT_WIDTH if compact else WIDTH
    if not report.hours:
        return _empty(chart_id, title, width)
    colours = category_colours(report.categories)
    left, right, bottom = (34, 6, 30) if compact else (52, 12, 34)
    size = 12 if compact else 13
    body, legend_y = svg_legend([(f"{c.name} {c.name_en}", colours[c.category]) for c in report.categories], left, 18,
                             width - right, size)
    top = legend_y + 30
    plot_w, plot_h = width - left - right, 200 if compact else 238
    height = top + plot_h + bottom
    axis_top, step = nice_ceiling(max(h.total for h in report.hours), whole=True)
    body += svg_grid(left, top, plot_w, plot_h, axis_top, step)
    body.append(svg_text(4, top - 14, "张 tickets", size=12, fill=MUTED))
    slot = plot_w / len(report.hours)
    bar_w = min(56.0, slot * 0.62)
    for i, h in enumerate(report.hours):
        x = left + slot * i + (slot - bar_w) / 2
        y = top + plot_h
        for c in report.categories:
            n = h.counts.get(c.category, 0)
            if not n:
                continue
            bar_h = plot_h * n / axis_top
            y -= bar_h
            body.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{bar_h:.1f}" '
                        f'fill="{colours[c.category]}"><title>{escape(f"{h.label} {c.name} {c.name_en}: {n}")}'
                        "</title></rect>")
        if h.total:
            body.append(svg_text(x + bar_w / 2, y - 5, str(h.total), anchor="middle", size=size, weight="bold"))
        hour = f"{h.hour}时" if compact else f"{h.hour:02d}时"
        body.append(svg_text(left + slot * i + slot / 2, top + plot_h + 18, hour, anchor="middle",
                          size=11 if compact else 13, fill=MUTED))
    desc = "；".join(f"{h.label} 共 {h.total}（" + "，".join(f"{c.name} {h.counts.get(c.category, 0)}"
                                                            for c in report.categories) + "）"
                    for h in report.hours)
    return svg_chart(chart_id, width, height, title, desc, body)


def svg_grid(left: float, top: float, plot_w: float, plot_h: float, axis_top: float, step: float) -> list[str]:
    out = []
    for value in _ticks(axis_top, step):
        y = top + plot_h - plot_h * value / axis_top
        out.append(f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{left + plot_w:.1f}" y2="{y:.1f}" '
                   f'stroke="{GRID if value else AXIS}" stroke-width="1"/>')
        out.append(svg_text(left - 6, y + 4, _num(value), anchor="end", size=12, fill=MUTED))
    return out


def _vertical_grid(left: float, plot_w: float, top: float, bottom: float, axis_top: float, step: float,
                   label: str, size: int) -> list[str]:
    """Draw a horizontal axis's grid lines and tick values (m:ss when label says so), with its unit at the end;
    a value that would stick out on the left starts at its line instead."""
    out = []
    for value in _ticks(axis_top, step):
        x = left + plot_w * value / axis_top
        out.append(f'<line x1="{x:.1f}" y1="{top - 6:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" '
                   f'stroke="{GRID if value else AXIS}" stroke-width="1"/>')
        text = _minutes(value) if label == "m:ss" else _num(value)
        anchor = "start" if x < text_width(text, size) / 2 + 1 else "middle"
        out.append(svg_text(x, bottom + 15, text, anchor=anchor, size=size, fill=MUTED))
    if label == "m:ss":
        out.append(svg_text(left + plot_w, bottom + 29, "分:秒 m:ss", anchor="end", size=size, fill=MUTED))
    return out


def waiting_times(report: Report, *, compact: bool = False) -> Markup:
    """Draw each category's p50 and p90 waiting time as horizontal bars (m:ss), with the VIP threshold."""
    chart_id, title = svg_chart_id("chart-waits", compact), "等候时间 Waiting time p50 / p90"
    width = COMPACT_WIDTH if compact else WIDTH
    rows = [c for c in report.categories if c.called]
    if not rows:
        return _empty(chart_id, title, width)
    # Wide: the names in a column on the left. Compact: each name on its own line above its bars.
    left, right, row_h, bar_top = (8, 62, 58, 22) if compact else (190, 120, 46, 6)
    size = 11 if compact else 12
    plot_w = width - left - right
    body, legend_y = svg_legend([("p50 中位数 median", P50_COLOUR), ("p90", P90_COLOUR)], left, 18, width - 4,
                             12 if compact else 13)
    top = legend_y + 26
    bottom = top + row_h * len(rows)
    height = bottom + 36
    threshold_min = report.vip_wait_threshold_minutes if any(c.vip for c in rows) else 0
    longest = max([max(c.wait_p90_s or 0, c.wait_p50_s or 0) / 60 for c in rows] + [threshold_min])
    axis_top, step = nice_ceiling(longest)
    body += _vertical_grid(left, plot_w, top, bottom, axis_top, step, "m:ss", size)
    for i, c in enumerate(rows):
        y = top + row_h * i
        if compact:
            body += svg_name(left, y + 14, c.name, c.name_en, 13)
        else:
            body.append(svg_text(left - 10, y + 18, c.name, anchor="end", size=14, weight="bold"))
            body.append(svg_text(left - 10, y + 33, c.name_en, anchor="end", size=12, fill=MUTED))
        for j, (value_s, colour, tag) in enumerate(((c.wait_p50_s, P50_COLOUR, "p50"),
                                                     (c.wait_p90_s, P90_COLOUR, "p90"))):
            bar_y = y + bar_top + j * 16
            bar_w = plot_w * (value_s or 0) / 60 / axis_top
            body.append(f'<rect x="{left}" y="{bar_y}" width="{max(bar_w, 1.5):.1f}" height="13" rx="2" '
                        f'fill="{colour}"/>')
            body.append(svg_text(left + bar_w + 5, bar_y + 11, f"{tag} {duration_text(value_s)}", size=size))
    if threshold_min:
        x = left + plot_w * threshold_min / axis_top
        body.append(f'<line x1="{x:.1f}" y1="{top - 8}" x2="{x:.1f}" y2="{bottom}" '
                    f'stroke="{DANGER}" stroke-width="1.5" stroke-dasharray="5 4"/>')
        label = f"贵宾阈值 VIP threshold {_minutes(threshold_min)}"
        anchor = "end" if compact and x + text_width(label, size) > width - 4 else "start"
        body.append(svg_text(x + (-4 if anchor == "end" else 4), top - 10, label, anchor=anchor, size=size,
                          fill=DANGER))
    desc = "；".join(f"{c.name}：p50 {duration_text(c.wait_p50_s)}，p90 {duration_text(c.wait_p90_s)}，"
                    f"最长 {duration_text(c.wait_max_s)}（{c.called} 位已叫号）" for c in rows)
    return svg_chart(chart_id, width, height, title, desc, body)


def pages_by_kind(report: Report, *, compact: bool = False) -> Markup:
    """Draw the pages of each kind as horizontal bars, the escalated part in red, with p50 to acknowledge."""
    chart_id, title = svg_chart_id("chart-pages", compact), "呼叫与升级 Pages by kind, escalated"
    width = COMPACT_WIDTH if compact else WIDTH
    rows = [k for k in report.pages if k.pages]
    if not rows:
        return _empty(chart_id, title, width)
    # Wide: names on the left, times to acknowledge on the right. Compact: both on a line above each bar.
    left, right, row_h, bar_top = (8, 84, 46, 22) if compact else (190, 230, 34, 5)
    plot_w = width - left - right
    body, legend_y = svg_legend([("呼叫 pages", PAGES_COLOUR), ("已升级 escalated", DANGER)], left, 18, width - 4,
                             12 if compact else 13)
    top = legend_y + 26
    bottom = top + row_h * len(rows)
    height = bottom + 24
    axis_top, step = nice_ceiling(max(k.pages for k in rows), whole=True)
    body += _vertical_grid(left, plot_w, top, bottom, axis_top, step, "count", 12)
    for i, k in enumerate(rows):
        y = top + row_h * i
        ack = (" · ".join(INFORMATION_NAMES) if k.information == k.pages else
               f"确认 p50 {duration_text(k.ack_p50_s)} · p90 {duration_text(k.ack_p90_s)}")
        if compact:
            body += svg_name(left, y + 14, k.name, k.name_en, 13)
            body.append(svg_text(width - 4, y + 14, ack, anchor="end", size=11, fill=MUTED))
        else:
            body.append(svg_text(left - 10, y + 14, k.name, anchor="end", size=14, weight="bold"))
            body.append(svg_text(left - 10, y + 27, k.name_en, anchor="end", size=11, fill=MUTED))
            body.append(svg_text(width - 6, y + 19, ack, anchor="end", size=12, fill=MUTED))
        bar_y = y + bar_top
        bar_w = plot_w * k.pages / axis_top
        body.append(f'<rect x="{left}" y="{bar_y}" width="{bar_w:.1f}" height="18" rx="2" fill="{PAGES_COLOUR}"/>')
        if k.escalated:
            esc_w = plot_w * k.escalated / axis_top
            body.append(f'<rect x="{left}" y="{bar_y}" width="{esc_w:.1f}" height="18" rx="2" fill="{DANGER}"/>')
        label = f"{k.pages}" + (f"（升级 {k.escalated}）" if k.escalated else "")
        body.append(svg_text(left + bar_w + 6, bar_y + 14, label, size=12, weight="bold"))
    desc = "；".join(f"{k.name} {k.pages} 条" + (
        f"，{INFORMATION_NAMES[0]}" if k.information == k.pages else
        f"，升级 {k.escalated}，系统解除 {k.cleared}，未确认 {k.unacknowledged}，确认用时 p50 "
        f"{duration_text(k.ack_p50_s)}，p90 {duration_text(k.ack_p90_s)}") for k in rows)
    return svg_chart(chart_id, width, height, title, desc, body)
