"""The branch's running counts for /metrics, kept in Redis: one hash per branch (`keys.stats`), written in the same
Lua script or MULTI as the event they count. So any number of processes on any number of hosts add up to one
figure, and a restart loses nothing. services/web/metrics.py reads them for Prometheus."""

from __future__ import annotations

import bisect

import redis

from services.domain import keys

# Bucket upper bounds (seconds): a customer's wait, and a manager's time to acknowledge.
WAIT_BUCKETS_S = (60, 120, 300, 600, 900, 1200, 1800, 2700, 3600)
ACK_BUCKETS_S = (5, 10, 20, 30, 45, 60, 120, 300, 600)


def le(value_s: float, bounds: tuple[int, ...]) -> str:
    """Return the label of the bucket a value falls in (its upper bound, or +Inf)."""
    i = bisect.bisect_left(bounds, value_s)
    return str(bounds[i]) if i < len(bounds) else "+Inf"


def count(pipe: redis.client.Pipeline, branch_id: str, field: str, amount: int = 1) -> None:
    """Add to a count in the branch's stats hash (inside the caller's MULTI)."""
    pipe.hincrby(keys.stats(branch_id), field, amount)


def observe(pipe: redis.client.Pipeline, branch_id: str, name: str, label: str, value_s: float,
            bounds: tuple[int, ...]) -> None:
    """Record one observation of a histogram in the branch's stats hash (inside the caller's MULTI)."""
    stats = keys.stats(branch_id)
    pipe.hincrby(stats, f"{name}_bucket:{label}:{le(value_s, bounds)}", 1)
    pipe.hincrbyfloat(stats, f"{name}_sum:{label}", round(value_s, 3))
    pipe.hincrby(stats, f"{name}_count:{label}", 1)
