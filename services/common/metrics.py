"""Prometheus metrics at `/metrics`, with prometheus-client.

Counts live in Redis, one hash per branch (`lobby:{branch}:stats`), written in the same Lua script or
MULTI as the event they count. So any number of processes on any number of hosts add up to one
figure, and a restart loses nothing. Each service exports what it owns:

- kiosk: tickets issued.
- counter: tickets called, and how long they waited.
- pager: pages by kind and priority, time to acknowledge, escalations.
- every service: its RQ queue's depth and failed jobs, its open SSE clients (per process), and
  process metrics; the pager also its page-request stream's backlog (pages do not travel as RQ jobs).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterator

import redis
from prometheus_client import CollectorRegistry, Gauge, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from rq.registry import FailedJobRegistry

from services.common import contracts, keys
from services.common.config import Branch, by_redis
from services.common.redis import get_redis

# Bucket upper bounds (seconds): a customer's wait, and a manager's time to acknowledge.
WAIT_BUCKETS_S = (60, 120, 300, 600, 900, 1200, 1800, 2700, 3600)
ACK_BUCKETS_S = (5, 10, 20, 30, 45, 60, 120, 300, 600)

# Open Server-Sent Events connections of this process, by audience (screen, device, terminal).
SSE_CLIENTS = Gauge("lobby_sse_clients", "Open Server-Sent Events connections of this process",
                    ["audience"], registry=None)


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


def lua_wait_bucket() -> str:
    """Return the Lua that records a ticket's wait in the stats hash: call it as record_wait(stats, cat, s)."""
    bounds = ", ".join(str(b) for b in WAIT_BUCKETS_S)
    return f"""
local function record_wait(stats, category, wait_s)
  local bounds = {{{bounds}}}
  local bucket = '+Inf'
  for _, bound in ipairs(bounds) do
    if wait_s <= bound then
      bucket = tostring(bound)
      break
    end
  end
  redis.call('HINCRBY', stats, 'tickets_called:' .. category, 1)
  redis.call('HINCRBY', stats, 'wait_bucket:' .. category .. ':' .. bucket, 1)
  redis.call('HINCRBYFLOAT', stats, 'wait_sum:' .. category, wait_s)
  redis.call('HINCRBY', stats, 'wait_count:' .. category, 1)
end
"""


# Which families each service exports, by the prefix of their fields in the stats hash.
OWNED = {"kiosk": ("tickets_issued",), "counter": ("tickets_called", "wait"),
         "pager": ("pages", "ack", "escalations")}


class LobbyCollector(Collector):
    """Read the branches' counts and the service's queue from Redis at each scrape."""

    def __init__(self, service: str, branches: dict[str, Branch], default_url: str):
        self.service = service
        self.branches = branches
        self.default_url = default_url

    def collect(self) -> Iterator[Metric]:
        # Branches may live on several Redis servers: one pipeline to each.
        by_url = by_redis(self.branches.values(), self.default_url)
        stats: dict[str, dict[str, str]] = {}
        for url, on_url in by_url.items():
            pipe = get_redis(url).pipeline(transaction=False)
            for branch in on_url:
                pipe.hgetall(keys.stats(branch.id))
            stats.update(zip((b.id for b in on_url), pipe.execute(), strict=True))
        owned = OWNED.get(self.service, ())
        if "tickets_issued" in owned:
            yield _counter("lobby_tickets_issued", "Tickets taken at the kiosk", ["branch", "category"],
                           stats, "tickets_issued")
        if "tickets_called" in owned:
            yield _counter("lobby_tickets_called", "Tickets called to a counter", ["branch", "category"],
                           stats, "tickets_called")
            yield _histogram("lobby_ticket_wait_seconds", "How long a ticket waited until it was called",
                             "category", stats, "wait", WAIT_BUCKETS_S)
        if "pages" in owned:
            yield _counter("lobby_pages", "Pages sent to the managers", ["branch", "kind", "priority"],
                           stats, "pages")
            yield _histogram("lobby_page_ack_seconds", "How long a page waited for a manager to acknowledge it",
                             "kind", stats, "ack", ACK_BUCKETS_S)
            yield _counter("lobby_escalations", "Pages escalated to the next manager", ["branch", "kind"],
                           stats, "escalations")
        queues = [contracts.queue(self.service, get_redis(url)) for url in by_url]
        depth = GaugeMetricFamily("lobby_rq_queue_depth", "Jobs waiting in the service's RQ queue (all shards)",
                                  labels=["queue"])
        depth.add_metric([self.service], sum(q.count for q in queues))
        yield depth
        failed = GaugeMetricFamily("lobby_rq_failed_jobs", "Jobs in the service's RQ failed-job registry (all shards)",
                                   labels=["queue"])
        failed.add_metric([self.service], sum(FailedJobRegistry(queue=q).count for q in queues))
        yield failed
        if self.service == "pager":
            backlogs = [contracts.page_request_backlog(get_redis(url)) for url in by_url]
            yield GaugeMetricFamily("lobby_page_requests_lag",
                                    "Page requests no pager worker has taken yet (all shards)",
                                    value=sum(b["lag"] for b in backlogs))
            yield GaugeMetricFamily("lobby_page_requests_pending",
                                    "Page requests a pager worker has taken and not finished yet (all shards)",
                                    value=sum(b["pending"] for b in backlogs))


def _fields(stats: dict[str, dict[str, str]], prefix: str) -> Iterator[tuple[str, list[str], float]]:
    for branch_id, fields in stats.items():
        for field, value in fields.items():
            name, _, rest = field.partition(":")
            if name == prefix:
                yield branch_id, rest.split(":"), float(value)


def _counter(name: str, doc: str, labels: list[str], stats: dict[str, dict[str, str]],
             prefix: str) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for branch_id, rest, value in _fields(stats, prefix):
        family.add_metric([branch_id, *rest], value)
    return family


def _histogram(name: str, doc: str, label: str, stats: dict[str, dict[str, str]], prefix: str,
               bounds: tuple[int, ...]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=["branch", label])
    buckets: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    sums: dict[tuple[str, str], float] = {}
    for branch_id, rest, value in _fields(stats, f"{prefix}_bucket"):
        buckets[branch_id, rest[0]][rest[1]] = value
    for branch_id, rest, value in _fields(stats, f"{prefix}_sum"):
        sums[branch_id, rest[0]] = value
    for series, counts in sorted(buckets.items()):
        cumulative, running = [], 0.0
        for bound in [*(str(b) for b in bounds), "+Inf"]:
            running += counts.get(bound, 0.0)
            cumulative.append((floatToGoString(float(bound)), running))
        family.add_metric(list(series), cumulative, sums.get(series, 0.0))
    return family


def registry_for(service: str, branches: dict[str, Branch], default_url: str) -> CollectorRegistry:
    """Return the registry a service's /metrics serves."""
    registry = CollectorRegistry()
    registry.register(LobbyCollector(service, branches, default_url))
    registry.register(SSE_CLIENTS)
    ProcessCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
