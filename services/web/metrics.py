"""Prometheus metrics at `/metrics`, with prometheus-client.

The counts are the branches' own, kept in Redis in the same script or MULTI as what they count
(services/domain/counts.py): any number of processes on any number of hosts add up to one figure, and a restart
loses nothing. Each service exports what it owns:

- kiosk: tickets issued, and its RQ queue's depth and failed jobs.
- counter: tickets called, and how long they waited; the backlog of the page news it reads.
- pager: pages by kind and priority, time to acknowledge, escalations, and drills of the silent call apart; the
  backlog of the page requests it reads; the screens, terminals and devices live, offline or never heard of
  (services/domain/presence.py).
- every service: its open SSE clients (per process), and process metrics.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Gauge, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from rq.registry import FailedJobRegistry

from services.domain import contracts, held_days, keys, presence
from services.domain.clock import SYSTEM
from services.domain.counts import ACK_BUCKETS_S, WAIT_BUCKETS_S
from services.runtime import consumer, messages
from services.runtime.settings import Context

# Open Server-Sent Events connections of this process, by audience (screen, device, terminal).
SSE_CLIENTS = Gauge("lobby_sse_clients", "Open Server-Sent Events connections of this process",
                    ["audience"], registry=None)


# Which families each service exports, by the prefix of their fields in the stats hash.
OWNED = {"kiosk": ("tickets_issued",), "counter": ("tickets_called", "wait"),
         "pager": ("pages", "ack", "escalations", "endpoints", "test_calls")}


class LobbyCollector(Collector):
    """Read the branches' counts and the service's queue from Redis at each scrape."""

    def __init__(self, service: str, ctx: Context):
        self.service = service
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        # Branches may live on several Redis servers: one pipeline to each.
        urls = self.ctx.urls()
        stats: dict[str, dict[str, str]] = {}
        for url in urls:
            on_url = self.ctx.on(url)
            pipe = self.ctx.redis(url).pipeline(transaction=False)
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
        if "endpoints" in owned:
            yield self._endpoints()
        if "pages" in owned:
            yield _counter("lobby_pages", "Pages sent to the managers", ["branch", "kind", "priority"],
                           stats, "pages")
            yield _histogram("lobby_page_ack_seconds", "How long a page waited for a manager to acknowledge it",
                             "kind", stats, "ack", ACK_BUCKETS_S)
            yield _counter("lobby_escalations", "Pages escalated to the next manager", ["branch", "kind"],
                           stats, "escalations")
        if "pages" in owned:
            yield from self._archive_lag()
        if "test_calls" in owned:
            yield _counter("lobby_test_calls", "Drills of the silent call (not counted in lobby_pages)",
                           ["branch", "kind"], stats, "test_calls")
        if self.service in contracts.QUEUES:
            queues = [messages.queue(self.service, self.ctx.redis(url)) for url in urls]
            depth = GaugeMetricFamily("lobby_rq_queue_depth", "Jobs waiting in the service's RQ queue (all shards)",
                                      labels=["queue"])
            depth.add_metric([self.service], sum(q.count for q in queues))
            yield depth
            failed = GaugeMetricFamily("lobby_rq_failed_jobs",
                                       "Jobs in the service's RQ failed-job registry (all shards)", labels=["queue"])
            failed.add_metric([self.service], sum(FailedJobRegistry(queue=q).count for q in queues))
            yield failed
        for channel in (c for c in contracts.CHANNELS if c.group == self.service):
            backlogs = [consumer.backlog(self.ctx.redis(url), channel) for url in urls]
            name = channel.key.rsplit(":", 1)[-1].replace("-", "_")  # page_requests, page_news
            yield GaugeMetricFamily(f"lobby_{name}_lag", f"Entries of {channel.key} no {channel.group} worker has "
                                    "taken yet (all shards)", value=sum(b["lag"] for b in backlogs))
            yield GaugeMetricFamily(f"lobby_{name}_pending", f"Entries of {channel.key} a {channel.group} worker "
                                    "has taken and not finished yet (all shards)",
                                    value=sum(b["pending"] for b in backlogs))


    def _archive_lag(self) -> Iterator[Metric]:
        days = GaugeMetricFamily("lobby_archive_lag_days", "Closed business days Redis holds that the records "
                                 "database does not yet (0: every closed day is archived)", labels=["branch"])
        age = GaugeMetricFamily("lobby_archive_oldest_waiting_days", "Age in days of the oldest closed day not "
                                "archived yet (0 when none waits)", labels=["branch"])
        for url in self.ctx.urls():
            r = self.ctx.redis(url)
            for branch in self.ctx.on(url):
                lag = held_days.lag(r, branch)
                days.add_metric([branch.id], lag.days)
                age.add_metric([branch.id], lag.oldest_age_days)
        yield days
        yield age

    def _endpoints(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily("lobby_endpoints", "Screens, terminals and devices of a branch, by kind and "
                                   "state (live; offline: supervised, not live; unsupervised: never heard of)",
                                   labels=["branch", "kind", "state"])
        now_ms = SYSTEM.now_ms()
        for url in self.ctx.urls():
            r = self.ctx.redis(url)
            for branch in self.ctx.on(url):
                tally: dict[tuple[str, str], int] = defaultdict(int)
                for p in presence.of(r, branch, presence.endpoints(branch), now_ms):
                    tally[p.endpoint.split(":", 1)[0], p.state] += 1
                for kind in ("display", "kiosk", presence.TERMINAL, presence.DEVICE):
                    for state in ("live", "offline", "unsupervised"):
                        family.add_metric([branch.id, kind, state], tally[kind, state])
        return family


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


def registry_for(service: str, ctx: Context) -> CollectorRegistry:
    """Return the registry a service's /metrics serves."""
    registry = CollectorRegistry()
    registry.register(LobbyCollector(service, ctx))
    registry.register(SSE_CLIENTS)
    ProcessCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
