"""Latencies as the results give them: milliseconds, nearest-rank percentiles (services.domain.stats)."""

from __future__ import annotations

from typing import Any

from services.domain.stats import percentile


def ms(ns: float | None) -> float | None:
    """Convert nanoseconds to milliseconds, to the microsecond."""
    return None if ns is None else round(ns / 1e6, 3)


def stats_ms(values_ns: list[int]) -> dict[str, Any]:
    """Summarise latencies (ns) in ms: count, p50, p99, max."""
    return {"n": len(values_ns), "p50_ms": ms(percentile(values_ns, 50)), "p99_ms": ms(percentile(values_ns, 99)),
            "max_ms": ms(max(values_ns)) if values_ns else None}
