"""The scale curves as one SVG: B4c's delivery latency and memory against live clients, and B9's latencies
against branches. Plain SVG (no plotting library): log-scaled x, linear y, one panel per measure."""

from __future__ import annotations

import math
from html import escape
from typing import Any

WIDTH, HEIGHT, PAD = 420, 260, 48
COLOURS = ("#1f5fa8", "#c0392b", "#2e8b57", "#8e44ad")


def panel(title: str, xs: list[float], series: dict[str, list[float | None]], x_label: str, y_label: str,
          limit: float | None = None) -> str:
    """Draw one panel: each series a line over xs (log scale), an optional target as a dashed line."""
    values = [v for ys in series.values() for v in ys if v is not None] + ([limit] if limit else [])
    top = max(values, default=1.0) * 1.1 or 1.0
    lo, hi = math.log10(min(xs)), math.log10(max(xs)) if max(xs) > min(xs) else math.log10(min(xs)) + 1

    def x(v: float) -> float:
        return PAD + (math.log10(v) - lo) / ((hi - lo) or 1) * (WIDTH - 2 * PAD)

    def y(v: float) -> float:
        return HEIGHT - PAD - v / top * (HEIGHT - 2 * PAD)

    out = [f'<g><text x="{WIDTH / 2}" y="18" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
           f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" stroke="#333"/>',
           f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#333"/>',
           f'<text x="{WIDTH / 2}" y="{HEIGHT - 10}" text-anchor="middle">{escape(x_label)}</text>',
           f'<text x="12" y="{HEIGHT / 2}" transform="rotate(-90 12 {HEIGHT / 2})" text-anchor="middle">'
           f'{escape(y_label)}</text>']
    for v in xs:
        out.append(f'<text x="{x(v):.1f}" y="{HEIGHT - PAD + 14}" text-anchor="middle" font-size="10">{v:g}</text>')
    for frac in (0, 0.5, 1):
        out.append(f'<text x="{PAD - 4}" y="{y(top * frac / 1.1) + 3:.1f}" text-anchor="end" font-size="10">'
                   f'{top * frac / 1.1:.0f}</text>')
    if limit:
        out.append(f'<line x1="{PAD}" y1="{y(limit):.1f}" x2="{WIDTH - PAD}" y2="{y(limit):.1f}" stroke="#999" '
                   f'stroke-dasharray="4 3"/><text x="{WIDTH - PAD}" y="{y(limit) - 3:.1f}" text-anchor="end" '
                   f'font-size="10" fill="#666">target {limit:g}</text>')
    for n, (name, ys) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        points = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in zip(xs, ys, strict=True) if b is not None)
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
        out += [f'<circle cx="{x(a):.1f}" cy="{y(b):.1f}" r="3" fill="{colour}"/>'
                for a, b in zip(xs, ys, strict=True) if b is not None]
        out.append(f'<text x="{PAD + 8}" y="{PAD + 4 + 14 * n}" font-size="11" fill="{colour}">{escape(name)}</text>')
    return "\n".join([*out, "</g>"])


def svg(b4c: dict[str, Any] | None, b9: dict[str, Any] | None) -> str:
    """Return the SVG of whichever curves ran."""
    panels = []
    if b4c:
        sizes = b4c["sizes"]
        clients = [s["clients"] for s in sizes]
        panels.append(panel("B4c delivery to every client", clients, {
            "p99": [s["delivery"]["p99_ms"] for s in sizes], "p50": [s["delivery"]["p50_ms"] for s in sizes]},
            "live clients", "ms", limit=250))
        panels.append(panel("B4c memory (all services + Redis)", clients, {
            "RSS, summed": [s["rss_kib"]["all_busy"] / 1024 for s in sizes],
            "PSS (shared pages once)": [s["rss_kib"].get("all_pss_busy", 0) / 1024 or None for s in sizes]},
            "live clients", "MiB", limit=1536))
        panels.append(panel("B4c Redis connections", clients, {
            "all processes": [s["redis_connections"]["total_busy"] for s in sizes]}, "live clients", "connections",
            limit=200))
    if b9:
        sizes = b9["sizes"]
        branches = [s["branches"] for s in sizes]
        panels.append(panel("B9 rush hour, p99", branches, {
            "press → device": [s["press_to_device"]["p99_ms"] for s in sizes],
            "pause → display": [s["pause_to_display"]["p99_ms"] for s in sizes],
            "ticket issue": [s["ticket_issue"]["p99_ms"] for s in sizes]}, "branches", "ms"))
    cols = 2
    rows = math.ceil(len(panels) / cols) or 1
    body = "\n".join(f'<g transform="translate({(i % cols) * WIDTH},{(i // cols) * HEIGHT})">{p}</g>'
                     for i, p in enumerate(panels))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{cols * WIDTH}" height="{rows * HEIGHT}" '
            f'font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>\n'
            f'{body}\n</svg>\n')
