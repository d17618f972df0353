"""Two simulated days drawn side by side as SVG, in the report's manner (services/pager/report/charts.py): one
panel per category, each customer a mark at the time they took their ticket and as high as they waited, the
pauses shaded. A title and a description say the figures in words."""

from __future__ import annotations

from datetime import UTC, datetime

from markupsafe import escape

from services.domain.stats import percentile
from services.pager.report.charts import AXIS, GRID, INK, MUTED, nice_ceiling, text_width
from services.pager.report.display import duration_text
from services.simulate.day import Day

WIDTH = 1000
LEFT, RIGHT, TOP = 70, 24, 64
PANEL, GAP = 170, 56
# The widest a policy's name may be in the legend.
LABEL_MAX = 380
COLOURS = ("#1558b0", "#b4532a")  # the first policy's marks, the second's
PAUSE_FILL = "#f3e3bf"


def compare(a: Day, b: Day, label_a: str, label_b: str) -> str:
    """Draw both days' waits, per category, over the day."""
    categories = a.branch.categories
    start = a.start_ms
    called = [t.called_ms for day in (a, b) for t in day.tickets.values() if t.called_ms is not None]
    end = max([a.closes_ms, start + 60_000, *called])
    height = TOP + len(categories) * (PANEL + GAP) + 10
    plot_w = WIDTH - LEFT - RIGHT
    body: list[str] = []

    def x(ms: int) -> float:
        return LEFT + (ms - start) / (end - start) * plot_w

    words = []
    lx = LEFT
    for i, (label, colour) in enumerate(((label_a, COLOURS[0]), (label_b, COLOURS[1]))):
        shown = label if text_width(label, 14) <= LABEL_MAX else _shorten(label, LABEL_MAX)
        body.append(_mark(lx + 6, 34, colour, i))
        body.append(_text(lx + 16, 39, shown, size=14))
        lx += 16 + text_width(shown, 14) + 28
    body.append(f'<rect x="{lx:.1f}" y="27" width="14" height="14" fill="{PAUSE_FILL}"/>')
    body.append(_text(lx + 20, 39, "暂停 pause", size=14))
    for n, category in enumerate(categories):
        top = TOP + n * (PANEL + GAP) + 22
        waits = [[(t.issued_ms, t.waited_s) for t in day.tickets.values()
                  if t.category == category.id and t.waited_s is not None] for day in (a, b)]
        if not any(waits):
            body.append(_text(LEFT + plot_w / 2, top + PANEL / 2, "无客户 · No customers", anchor="middle",
                              size=14, fill=MUTED))
            words.append(f"{category.name_en}: no customers")
            continue
        highest = max((w for series in waits for _, w in series), default=0) / 60
        axis_top, step = nice_ceiling(max(highest, 1))
        body.append(_text(LEFT, top - 10, f"{category.name} {category.name_en}", size=15, weight="bold"))
        for counter_id, since, until in a.pauses:
            counter = a.branch.counter(counter_id)
            if counter and category.id in counter.serves:
                body.append(f'<rect x="{x(since):.1f}" y="{top}" width="{x(until) - x(since):.1f}" '
                            f'height="{PANEL}" fill="{PAUSE_FILL}"/>')
        ticks = round(axis_top / step)
        for k in range(ticks + 1):
            y = top + PANEL - k * step / axis_top * PANEL
            body.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" '
                        f'stroke="{GRID if k else AXIS}"/>')
            body.append(_text(LEFT - 8, y + 4, duration_text(k * step * 60), anchor="end", size=12, fill=MUTED))
        for moment in range(-(-start // 3_600_000) * 3_600_000, end + 1, 3_600_000):  # each whole hour
            body.append(_text(x(moment), top + PANEL + 16, _clock(a, moment), anchor="middle", size=12,
                              fill=MUTED))
        for i, series in enumerate(waits):
            for issued, waited in series:
                y = top + PANEL - (waited / 60) / axis_top * PANEL
                body.append(_mark(x(issued), y, COLOURS[i], i))
        parts = []
        for label, series in ((label_a, waits[0]), (label_b, waits[1])):
            values = [w for _, w in series]
            parts.append(f"{label}: {len(values)} customers, p90 {duration_text(percentile(values, 90))}, "
                         f"longest {duration_text(max(values, default=None))}")
        words.append(f"{category.name_en}: " + "; ".join(parts))
    title = f"{a.branch.name} {a.day}: waits per category, {label_a} against {label_b}"
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
            f'height="{height}" role="img" aria-labelledby="t d" font-family="Noto Sans CJK SC, sans-serif">'
            f'<title id="t">{escape(title)}</title><desc id="d">{escape(". ".join(words))}</desc>'
            f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>')
    body.insert(0, _text(LEFT, 16, "每位客户：取号时间与等候时长 · Each customer: when they took a ticket, and how "
                                   "long they waited", size=14, fill=INK))
    return head + "".join(body) + "</svg>\n"


def _shorten(label: str, width: float) -> str:
    """Cut a legend's label to a width, with an ellipsis (the description says it whole)."""
    while label and text_width(label + "…", 14) > width:
        label = label[:-1]
    return label + "…"


def _mark(cx: float, cy: float, colour: str, shape: int) -> str:
    if shape == 0:
        return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="3.5" fill="{colour}" fill-opacity="0.8"/>'
    return (f'<rect x="{cx - 3.5:.1f}" y="{cy - 3.5:.1f}" width="7" height="7" fill="none" stroke="{colour}" '
            f'stroke-width="1.5"/>')


def _clock(day: Day, ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(day.branch.zone).strftime("%H:%M")


def _text(x: float, y: float, content: str, *, anchor: str = "start", size: int = 13, fill: str = INK,
          weight: str = "normal") -> str:
    extra = f' font-weight="{weight}"' if weight != "normal" else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{fill}"{extra}>'
            f"{escape(content)}</text>")
