"""The trends' charts, as SVG, drawn as the daily report draws its own (services/pager/report/charts.py, whose
helpers, colours and sizes these share): no script, an `<svg role="img">` with a `<title>` and a `<desc>` that
says the numbers in words, text escaped, colours as presentation attributes, and each chart drawn twice, wide
(1000 units across, for a desk and A4) and compact (360, for a phone). Durations read as m:ss (h:mm:ss from an
hour), as everywhere on the page.

- `heatmap`: one category's waits, p50 and p90, by weekday (rows) and hour (columns);
- `vip_share`: the share of VIP waits over the threshold, one column a week;
- `acks_by_week`: time to acknowledge, p50 and p90 lines a week, over the escalations of each week;
- `acks_by_kind`: time to acknowledge per page kind over the range, with its escalations;
- `pauses_by_reason`: the time paused per reason, its overrun part in red, with the overruns counted;
- `tickets_per_day`: tickets issued each day, stacked by category.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import date

from markupsafe import Markup, escape

from services.pager.report.charts import (
    AXIS,
    COMPACT_WIDTH,
    DANGER,
    GRID,
    INK,
    MUTED,
    P50_COLOUR,
    P90_COLOUR,
    PAGES_COLOUR,
    VIP_COLOURS,
    WIDTH,
    category_colours,
    nice_ceiling,
    svg_chart,
    svg_chart_id,
    svg_grid,
    svg_legend,
    svg_name,
    svg_text,
    text_width,
)
from services.pager.report.display import WEEKDAYS, duration_text
from services.pager.trends.models import CategoryTrend, HeatCell, Trends

# Waits from short to long, light to dark; a cell with no called ticket is grey.
HEAT = ("#dde9f8", "#bcd3f1", "#93b7e6", "#6896d6", "#3f73bf", "#20539b", "#0f3668")
HEAT_DARK_FROM = 4  # white text on HEAT[4:], ink on the lighter ones
NO_DATA = "#eef0f3"
WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
EMPTY = "所选时段无归档记录 · No archived records in this range"


def _empty(chart_id: str, title: str, width: int, text: str = EMPTY) -> Markup:
    height = 120
    return svg_chart(chart_id, width, height, title, text,
                [svg_text(width / 2, height / 2, text, anchor="middle", size=14 if width == WIDTH else 12, fill=MUTED)])


def _short_day(day: date) -> str:
    return f"{day.month}/{day.day}"


def _percent(share: float) -> str:
    return f"{share * 100:.0f}%"


def _y_axis(left: float, top: float, plot_w: float, plot_h: float, axis_top: float, step: float,
            label: Callable[[float], str], size: int = 12) -> list[str]:
    """Draw a vertical axis's grid lines and tick values, written by `label`."""
    out = []
    for i in range(round(axis_top / step) + 1):
        value = i * step
        y = top + plot_h - plot_h * value / axis_top
        out.append(f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{left + plot_w:.1f}" y2="{y:.1f}" '
                   f'stroke="{GRID if value else AXIS}" stroke-width="1"/>')
        out.append(svg_text(left - 6, y + 4, label(value), anchor="end", size=size, fill=MUTED))
    return out


def _x_labels(labels: Sequence[str], left: float, slot: float, y: float, size: int) -> list[str]:
    """Write labels under columns, every n-th one when they would run into each other (empty ones skipped); one
    that would stick out past either end of the axis ends there instead."""
    shown = [label for label in labels if label]
    if not shown:
        return []
    widest = max(text_width(label, size) for label in shown)
    every = 1 if len(shown) < len(labels) else max(1, math.ceil((widest + 8) / slot))
    right = left + slot * len(labels)
    out = []
    for i, label in enumerate(labels):
        if not label or i % every:
            continue
        x, half = left + slot * i + slot / 2, text_width(label, size) / 2
        if x + half > right + 4:
            out.append(svg_text(right + 4, y, label, anchor="end", size=size, fill=MUTED))
        elif x - half < left - 4:
            out.append(svg_text(left - 4, y, label, anchor="start", size=size, fill=MUTED))
        else:
            out.append(svg_text(x, y, label, anchor="middle", size=size, fill=MUTED))
    return out


def _day_labels(days: Sequence[date], slot: float, size: int) -> list[str]:
    """Label the days of an axis as densely as fits: each day, each Monday, or each month's first day."""
    if text_width("12/30", size) + 8 <= slot:
        return [_short_day(d) for d in days]
    if text_width("12/30", size) + 8 <= slot * 7:
        return [_short_day(d) if d.weekday() == 0 else "" for d in days]
    return [f"{d.month}月" if d.day == 1 else "" for d in days]


def time_axis(longest_min: float) -> tuple[float, float]:
    """Return the top of a time axis and its step, in minutes: round minutes below two hours, round hours from
    there (10:00:00, not 8:20:00)."""
    if longest_min < 120:
        return nice_ceiling(longest_min)
    top_h, step_h = nice_ceiling(longest_min / 60)
    return top_h * 60, step_h * 60


def _duration_grid(left: float, plot_w: float, top: float, bottom: float, axis_top_min: float, step_min: float,
                   size: int) -> list[str]:
    """Draw a horizontal time axis (values in minutes, written m:ss or h:mm:ss) with its unit at the end."""
    out = []
    for i in range(round(axis_top_min / step_min) + 1):
        value = i * step_min
        x = left + plot_w * value / axis_top_min
        out.append(f'<line x1="{x:.1f}" y1="{top - 6:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" '
                   f'stroke="{GRID if value else AXIS}" stroke-width="1"/>')
        text = duration_text(value * 60)
        anchor = "start" if x < text_width(text, size) / 2 + 1 else "middle"
        out.append(svg_text(x, bottom + 15, text, anchor=anchor, size=size, fill=MUTED))
    unit = "时:分:秒 h:mm:ss" if axis_top_min >= 60 else "分:秒 m:ss"
    out.append(svg_text(left + plot_w, bottom + 29, unit, anchor="end", size=size, fill=MUTED))
    return out


# The heatmap.


def heat_scale(cells: Sequence[HeatCell]) -> tuple[float, int]:
    """Return the width of a colour step of the heatmap (seconds, a round number of minutes or seconds) and the
    number of steps, so that the longest p90 falls in the last."""
    longest = max([c.wait_p90_s or 0 for c in cells] + [0.0]) / 60
    axis_top, step = nice_ceiling(longest, ticks=6)
    steps = max(1, round(axis_top / step))
    return step * 60, min(steps, len(HEAT))


def heat_colour(value: float, step_s: float, steps: int) -> tuple[str, str]:
    """Return the fill of a wait in the heatmap and the colour its text needs to be read on it."""
    index = min(int(value // step_s), steps - 1)
    shade = round(index * (len(HEAT) - 1) / (steps - 1)) if steps > 1 else len(HEAT) // 2
    return HEAT[shade], "#ffffff" if shade >= HEAT_DARK_FROM else INK


def heat_legend(step_s: float, steps: int) -> list[tuple[str, str]]:
    """Name each colour of the heatmap by the waits it stands for (m:ss), and the grey of no waits."""
    items = []
    for i in range(steps):
        low, high = duration_text(i * step_s), duration_text((i + 1) * step_s)
        label = f"< {high}" if i == 0 else (f"≥ {low}" if i == steps - 1 else f"{low}–{high}")
        items.append((label, heat_colour(i * step_s, step_s, steps)[0]))
    return [*items, ("无数据 none", NO_DATA)]


def heatmap(trends: Trends, category: CategoryTrend, *, compact: bool = False) -> Markup:
    """Draw one category's waits by weekday and hour: p50 and p90 side by side (stacked on a phone), each cell
    coloured by its wait and labelled m:ss."""
    chart_id = svg_chart_id(f"chart-heat-{category.category}", compact)
    title = f"{category.name} {category.name_en} 等候时间热力图 Waits by weekday and hour"
    width = COMPACT_WIDTH if compact else WIDTH
    cells = [c for c in trends.heatmap if c.category == category.category]
    if not category.called:
        return _empty(chart_id, title, width, "所选时段无已叫号的票 · No ticket called in this range")
    step_s, steps = heat_scale(cells)
    size = 12 if compact else 13
    body, legend_y = svg_legend(heat_legend(step_s, steps), 8 if compact else 70, 18, width - 4, size)
    left, gap, right = (40, 0, 4) if compact else (74, 30, 8)
    panel_w = (width - left - right) if compact else (width - left - gap - right) / 2
    columns, rows = len(trends.hours), len(trends.weekdays)
    cell_w, cell_h = panel_w / columns, (28 if compact else 32)
    value_size = min(12, int(cell_w / 3.3)) if compact else min(13, int(cell_w / 3.2))
    by_key = {(c.weekday, c.hour): c for c in cells}
    y = legend_y + 14
    panels = (("p50 中位数 median", "wait_p50_s"), ("p90", "wait_p90_s"))
    for n, (label, field) in enumerate(panels):
        x0 = left + (0 if compact else n * (panel_w + gap))
        if compact and n:
            y += 18
        body.append(svg_text(x0, y + 14, label, size=size, weight="bold"))
        grid_top = y + 22
        for r, weekday in enumerate(trends.weekdays):
            cy = grid_top + r * cell_h
            if n == 0 or compact:
                day = f"周{WEEKDAYS[weekday]}"
                body.append(svg_text(x0 - 6, cy + cell_h / 2 + (4 if compact else 0), day, anchor="end", size=size))
                if not compact:
                    body.append(svg_text(x0 - 6, cy + cell_h / 2 + 13, WEEKDAYS_EN[weekday], anchor="end", size=11,
                                      fill=MUTED))
            for col, hour in enumerate(trends.hours):
                cell = by_key.get((weekday, hour))
                value = getattr(cell, field) if cell else None
                cx = x0 + col * cell_w
                fill, ink = heat_colour(value, step_s, steps) if value is not None else (NO_DATA, MUTED)
                tip = (f"周{WEEKDAYS[weekday]} {hour:02d}时 {category.name}: {label.split()[0]} "
                       f"{duration_text(value)} · {cell.called if cell else 0} 位已叫号 called")
                body.append(f'<rect x="{cx + 1:.1f}" y="{cy + 1:.1f}" width="{cell_w - 2:.1f}" height="{cell_h - 2}" '
                            f'rx="2" fill="{fill}"><title>{escape(tip)}</title></rect>')
                if value_size >= 9:  # narrower cells say their value in their tooltip only
                    body.append(svg_text(cx + cell_w / 2, cy + cell_h / 2 + value_size * 0.36,
                                      duration_text(value) if value is not None else "·", anchor="middle",
                                      size=value_size, fill=ink))
        hours_y = grid_top + rows * cell_h + 15
        for col, hour in enumerate(trends.hours):
            if compact and columns > 9 and col % 2:
                continue
            body.append(svg_text(x0 + col * cell_w + cell_w / 2, hours_y, f"{hour}时" if compact else f"{hour:02d}时",
                              anchor="middle", size=11 if compact else 12, fill=MUTED))
        if compact:
            y = hours_y
    height = (y if compact else grid_top + rows * cell_h + 15) + 12
    desc = f"{category.name}：" + "；".join(
        f"周{WEEKDAYS[c.weekday]} {c.hour:02d}时 p50 {duration_text(c.wait_p50_s)}，p90 {duration_text(c.wait_p90_s)}"
        f"（{c.called} 位）" for c in cells if c.called)
    return svg_chart(chart_id, width, height, title, desc, body)


# Weekly columns and lines.


def _week_frame(trends: Trends, compact: bool) -> tuple[int, float, float, float, int]:
    """Return the width, left margin, right margin, slot per week and label size of a weekly chart."""
    width = COMPACT_WIDTH if compact else WIDTH
    left, right = (40, 6) if compact else (64, 14)
    return width, left, right, (width - left - right) / max(1, len(trends.weeks)), 11 if compact else 12


def vip_share(trends: Trends, *, compact: bool = False) -> Markup:
    """Draw, a column a week, the share of VIP waits longer than the threshold, labelled when it fits."""
    threshold = duration_text(trends.vip_wait_threshold_minutes * 60)
    chart_id = svg_chart_id("chart-vip", compact)
    title = f"贵宾等候超过 {threshold} 的占比（每周）Share of VIP waits over {threshold}, by week"
    width, left, right, slot, size = _week_frame(trends, compact)
    weeks = trends.weeks
    if not any(w.vip_called for w in weeks):
        return _empty(chart_id, title, width, "所选时段没有贵宾等候记录 · No VIP waits in this range")
    top, plot_h = 34, 170 if compact else 220
    axis_top, step = nice_ceiling(max(max(w.vip_over_share or 0 for w in weeks) * 100, 10))
    body = [svg_text(4, 18, "占比 share of VIP waits", size=12, fill=MUTED)]
    body += _y_axis(left, top, width - left - right, plot_h, axis_top, step, lambda v: f"{v:g}%")
    bar_w = min(44.0, slot * 0.7)
    for i, w in enumerate(weeks):
        if w.vip_over_share is None:
            continue
        h = plot_h * w.vip_over_share * 100 / axis_top
        x = left + slot * i + (slot - bar_w) / 2
        tip = (f"{w.week} ({w.start} – {w.end}): {w.vip_over} / {w.vip_called} = {_percent(w.vip_over_share)}"
               + (f"，{w.vip_not_called} 位未叫号 never called" if w.vip_not_called else ""))
        body.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" height="{max(h, 0.8):.1f}" '
                    f'fill="{VIP_COLOURS[0]}"><title>{escape(tip)}</title></rect>')
        label = _percent(w.vip_over_share)
        if text_width(label, size) + 8 <= slot:  # bold, with a gap to the next
            body.append(svg_text(x + bar_w / 2, top + plot_h - h - 5, label, anchor="middle", size=size, weight="bold"))
    body += _x_labels([_short_day(date.fromisoformat(w.start)) for w in weeks], left, slot, top + plot_h + 17, size)
    body.append(svg_text(width - right, top + plot_h + 33, "周一 week of (Monday)", anchor="end", size=size,
                         fill=MUTED))
    desc = "；".join(f"{w.week}（{w.start} 起）{w.vip_over}/{w.vip_called}，{_percent(w.vip_over_share)}"
                    for w in weeks if w.vip_over_share is not None)
    return svg_chart(chart_id, width, top + plot_h + 42, title, desc, body)


def acks_by_week(trends: Trends, *, compact: bool = False) -> Markup:
    """Draw time to acknowledge a week, p50 and p90 as lines (m:ss), above the week's escalations as columns."""
    chart_id = svg_chart_id("chart-acks", compact)
    title = "确认用时与升级（每周）Time to acknowledge and escalations, by week"
    width, left, right, slot, size = _week_frame(trends, compact)
    weeks = trends.weeks
    if not any(w.pages for w in weeks):
        return _empty(chart_id, title, width, "所选时段没有需确认的呼叫 · No pages to acknowledge in this range")
    plot_w = width - left - right
    body, legend_y = svg_legend([("p50 中位数 median", P50_COLOUR), ("p90", P90_COLOUR), ("升级 escalated", DANGER)],
                             left, 18, width - 4, 12 if compact else 13)
    top = legend_y + 26
    plot_h = 150 if compact else 200
    longest = max(w.ack_p90_s or 0 for w in weeks) / 60
    axis_top, step = nice_ceiling(max(longest, 0.5))
    body.append(svg_text(4, top - 12, "分:秒 m:ss", size=11, fill=MUTED))
    body += _y_axis(left, top, plot_w, plot_h, axis_top, step, lambda v: duration_text(v * 60), 11)
    for field, colour, tag in (("ack_p50_s", P50_COLOUR, "p50"), ("ack_p90_s", P90_COLOUR, "p90")):
        points = [(i, left + slot * i + slot / 2, top + plot_h - plot_h * getattr(w, field) / 60 / axis_top, w,
                   getattr(w, field)) for i, w in enumerate(weeks) if getattr(w, field) is not None]
        # A week with nothing acknowledged breaks the line: each run of weeks with a value is drawn apart.
        runs: list[list[tuple[float, float]]] = []
        previous = -2
        for i, x, y, _, _ in points:
            if i != previous + 1:
                runs.append([])
            runs[-1].append((x, y))
            previous = i
        for run in runs:
            if len(run) > 1:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
        radius = 3.5 if slot >= 9 else 2
        for _, x, y, w, value in points:
            tip = f"{w.week} ({w.start}) {tag} {duration_text(value)} · {w.acknowledged} 条已确认 acknowledged"
            body.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{colour}"><title>{escape(tip)}</title>'
                        "</circle>")
    # The escalations, on their own axis below.
    esc_top = top + plot_h + 34
    esc_h = 56 if compact else 70
    esc_axis, esc_step = nice_ceiling(max(max(w.escalated for w in weeks), 1), ticks=2, whole=True)
    body.append(svg_text(4, esc_top - 10, "升级 escalated", size=11, fill=MUTED))
    body += svg_grid(left, esc_top, plot_w, esc_h, esc_axis, esc_step)
    bar_w = min(40.0, slot * 0.7)
    for i, w in enumerate(weeks):
        if not w.escalated:
            continue
        h = esc_h * w.escalated / esc_axis
        x = left + slot * i + (slot - bar_w) / 2
        body.append(f'<rect x="{x:.1f}" y="{esc_top + esc_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                    f'fill="{DANGER}"><title>{escape(f"{w.week} ({w.start}): {w.escalated} 升级 escalated")}</title>'
                    "</rect>")
        if text_width(str(w.escalated), size) + 6 <= slot:
            body.append(svg_text(x + bar_w / 2, esc_top + esc_h - h - 4, str(w.escalated), anchor="middle", size=size,
                              weight="bold"))
    body += _x_labels([_short_day(date.fromisoformat(w.start)) for w in weeks], left, slot, esc_top + esc_h + 17,
                      size)
    desc = "；".join(f"{w.week}（{w.start} 起）p50 {duration_text(w.ack_p50_s)}，p90 {duration_text(w.ack_p90_s)}，"
                    f"升级 {w.escalated}" for w in weeks if w.pages)
    return svg_chart(chart_id, width, esc_top + esc_h + 26, title, desc, body)


# Horizontal bars, a row per kind or reason.


def acks_by_kind(trends: Trends, *, compact: bool = False) -> Markup:
    """Draw each page kind's p50 and p90 time to acknowledge over the range as bars (m:ss), with escalations."""
    chart_id = svg_chart_id("chart-kinds", compact)
    title = "各类呼叫确认用时 Time to acknowledge by kind"
    width = COMPACT_WIDTH if compact else WIDTH
    rows = [k for k in trends.kinds if k.acknowledged]
    if not rows:
        return _empty(chart_id, title, width, "所选时段没有已确认的呼叫 · No page acknowledged in this range")
    left, right, row_h, bar_top = (8, 62, 58, 22) if compact else (190, 150, 46, 6)
    size = 11 if compact else 12
    plot_w = width - left - right
    body, legend_y = svg_legend([("p50 中位数 median", P50_COLOUR), ("p90", P90_COLOUR)], left, 18, width - 4,
                             12 if compact else 13)
    top = legend_y + 26
    bottom = top + row_h * len(rows)
    axis_top, step = time_axis(max(max(k.ack_p90_s or 0 for k in rows) / 60, 0.5))
    body += _duration_grid(left, plot_w, top, bottom, axis_top, step, size)
    for i, k in enumerate(rows):
        y = top + row_h * i
        escalated = f"升级 {k.escalated}" if k.escalated else ""
        if compact:
            body += svg_name(left, y + 14, k.name, k.name_en, 13)
            if escalated:
                body.append(svg_text(width - 4, y + 14, escalated, anchor="end", size=11, fill=DANGER, weight="bold"))
        else:
            body.append(svg_text(left - 10, y + 18, k.name, anchor="end", size=14, weight="bold"))
            body.append(svg_text(left - 10, y + 33, k.name_en, anchor="end", size=12, fill=MUTED))
            if escalated:
                body.append(svg_text(width - 6, y + 25, f"{escalated} escalated", anchor="end", size=12, fill=DANGER,
                                  weight="bold"))
        bars = ((k.ack_p50_s, P50_COLOUR, "p50"), (k.ack_p90_s, P90_COLOUR, "p90"))
        for j, (value_s, colour, tag) in enumerate(bars):
            bar_y = y + bar_top + j * 16
            bar_w = plot_w * (value_s or 0) / 60 / axis_top
            body.append(f'<rect x="{left}" y="{bar_y}" width="{max(bar_w, 1.5):.1f}" height="13" rx="2" '
                        f'fill="{colour}"/>')
            body.append(svg_text(left + bar_w + 5, bar_y + 11, f"{tag} {duration_text(value_s)}", size=size))
    desc = "；".join(f"{k.name}：{k.acknowledged} 条已确认，p50 {duration_text(k.ack_p50_s)}，p90 "
                    f"{duration_text(k.ack_p90_s)}，升级 {k.escalated}" for k in rows)
    return svg_chart(chart_id, width, bottom + 36, title, desc, body)


def pauses_by_reason(trends: Trends, *, compact: bool = False) -> Markup:
    """Draw the time paused per reason as bars, the part past the time expected in red, with the overruns."""
    chart_id = svg_chart_id("chart-pauses", compact)
    title = "各原因暂停时长与超时 Pause time by reason, and overruns"
    width = COMPACT_WIDTH if compact else WIDTH
    rows = [r for r in trends.pauses if r.pauses]
    if not rows:
        return _empty(chart_id, title, width, "所选时段没有暂停 · No pauses in this range")
    left, right, row_h, bar_top = (8, 20, 46, 22) if compact else (190, 190, 38, 8)
    size = 11 if compact else 12
    plot_w = width - left - right
    body, legend_y = svg_legend([("暂停时长 time paused", PAGES_COLOUR), ("超出预计 past the time expected", DANGER)],
                             left, 18, width - 4, 12 if compact else 13)
    top = legend_y + 26
    bottom = top + row_h * len(rows)
    axis_top, step = time_axis(max(r.actual_s for r in rows) / 60)
    body += _duration_grid(left, plot_w, top, bottom, axis_top, step, size)
    for i, r in enumerate(rows):
        y = top + row_h * i
        label = f"{duration_text(r.actual_s)} · {r.pauses} 次" + (f" · 超时 {r.overruns}" if r.overruns else "")
        if compact:
            body += svg_name(left, y + 14, r.name, r.name_en, 13)
        else:
            body.append(svg_text(left - 10, y + 16, r.name, anchor="end", size=14, weight="bold"))
            body.append(svg_text(left - 10, y + 30, r.name_en, anchor="end", size=12, fill=MUTED))
        bar_y = y + bar_top
        bar_w = plot_w * r.actual_s / 60 / axis_top
        over_w = plot_w * r.over_s / 60 / axis_top
        body.append(f'<rect x="{left}" y="{bar_y}" width="{max(bar_w, 1.5):.1f}" height="16" rx="2" '
                    f'fill="{PAGES_COLOUR}"/>')
        if r.over_s:
            body.append(f'<rect x="{left + bar_w - over_w:.1f}" y="{bar_y}" width="{over_w:.1f}" height="16" rx="2" '
                        f'fill="{DANGER}"/>')
        if compact:
            body.append(svg_text(width - 4, y + 14, label, anchor="end", size=11, fill=MUTED))
        else:
            body.append(svg_text(left + bar_w + 6, bar_y + 13, label, size=size, weight="bold"))
    desc = "；".join(f"{r.name}：{r.pauses} 次，共 {duration_text(r.actual_s)}，超时 {r.overruns} 次，超出共 "
                    f"{duration_text(r.over_s)}" for r in rows)
    return svg_chart(chart_id, width, bottom + 36, title, desc, body)


# Days.


def tickets_per_day(trends: Trends, *, compact: bool = False) -> Markup:
    """Draw the tickets issued each day as columns stacked by category (one colour when columns are too thin to
    tell colours apart); a day not archived has none."""
    chart_id = svg_chart_id("chart-days", compact)
    title = "每日取号 Tickets per day"
    width = COMPACT_WIDTH if compact else WIDTH
    days = trends.daily
    if not any(d.total for d in days):
        return _empty(chart_id, title, width)
    colours = category_colours(trends.categories)
    left, right = (34, 6) if compact else (52, 12)
    size = 11 if compact else 12
    body, legend_y = svg_legend([(f"{c.name} {c.name_en}", colours[c.category]) for c in trends.categories], left, 18,
                             width - right, 12 if compact else 13)
    top = legend_y + 30
    plot_w, plot_h = width - left - right, 170 if compact else 220
    slot = plot_w / len(days)
    stacked = slot >= 3
    axis_top, step = nice_ceiling(max(d.total for d in days), whole=True)
    body.append(svg_text(4, top - 14, "张 tickets", size=12, fill=MUTED))
    body += svg_grid(left, top, plot_w, plot_h, axis_top, step)
    bar_w = max(slot * 0.72, min(slot, 1.2))
    for i, d in enumerate(days):
        x = left + slot * i + (slot - bar_w) / 2
        y = top + plot_h
        parts = [(d.counts.get(c.category, 0), colours[c.category]) for c in trends.categories] if stacked \
            else [(d.total, PAGES_COLOUR)]
        for n, colour in parts:
            if not n:
                continue
            h = plot_h * n / axis_top
            y -= h
            body.append(f'<rect x="{x:.2f}" y="{y:.1f}" width="{bar_w:.2f}" height="{h:.1f}" fill="{colour}"/>')
    body += _x_labels(_day_labels([date.fromisoformat(d.day) for d in days], slot, size), left, slot,
                      top + plot_h + 17, size)
    desc = _days_desc(trends)
    return svg_chart(chart_id, width, top + plot_h + 28, title, desc, body)


def _days_desc(trends: Trends) -> str:
    """Say the tickets per day in words: each day for a month or less, else each month's total and daily mean."""
    archived = [d for d in trends.daily if d.archived]
    if len(trends.daily) <= 31:
        return "；".join(f"{d.day} {d.total}" for d in archived) or EMPTY
    months: dict[str, list[int]] = {}
    for d in archived:
        months.setdefault(d.day[:7], []).append(d.total)
    return "；".join(f"{month}：共 {sum(n)}，{len(n)} 天，日均 {sum(n) / len(n):.0f}" for month, n in months.items()) \
        or EMPTY
