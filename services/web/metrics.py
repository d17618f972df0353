"""Prometheus metrics at `/metrics`, with prometheus-client.

The counts are the branches' own, kept in Redis in the same script or MULTI as what they count
(services/domain/counts.py): any number of processes on any number of hosts add up to one figure, and a restart
loses nothing. Each service exports what it owns:

- kiosk: tickets issued, and its RQ queue's depth and failed jobs.
- counter: tickets called, and how long they waited; the backlog of the page news it reads.
- pager: pages by kind and priority, time to acknowledge, escalations, and drills of the silent call apart; the
  backlog of the page requests it reads; the screens, terminals and devices live, offline or never heard of
  (services/domain/presence.py).
- every service: its live stream clients by audience, streams and readers (all its processes, as each says in
  Redis), the Redis connections by the role of the process holding them, and process metrics.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from rq.registry import FailedJobRegistry

from services.domain import contracts, held_days, keys, presence
from services.domain.clock import SYSTEM
from services.domain.counts import ACK_BUCKETS_S, WAIT_BUCKETS_S
from services.runtime import consumer, messages
from services.runtime import redis as clients
from services.runtime.settings import Context
from services.web import hub

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
        yield from self._live(urls)
        for channel in (c for c in contracts.CHANNELS if c.group == self.service):
            backlogs = [consumer.backlog(self.ctx.redis(url), channel) for url in urls]
            name = channel.key.rsplit(":", 1)[-1].replace("-", "_")  # page_requests, page_news
            yield GaugeMetricFamily(f"lobby_{name}_lag", f"Entries of {channel.key} no {channel.group} worker has "
                                    "taken yet (all shards)", value=sum(b["lag"] for b in backlogs))
            yield GaugeMetricFamily(f"lobby_{name}_pending", f"Entries of {channel.key} a {channel.group} worker "
                                    "has taken and not finished yet (all shards)",
                                    value=sum(b["pending"] for b in backlogs))


    def _live(self, urls: list[str]) -> Iterator[Metric]:
        """The live streams of all this service's web processes (as each says, services/web/hub.py), and the
        connections each Redis has, by the role of the process holding them (CLIENT LIST)."""
        live = {"processes": 0, "clients": 0, "streams": 0, "readers": 0}
        audiences: dict[str, int] = defaultdict(int)
        connections: dict[str, int] = defaultdict(int)
        for url in urls:
            r = self.ctx.redis(url)
            held = hub.by_service(r).get(self.service, {})
            for part in live:
                live[part] += held.get(part, 0)
            for audience, count in held.get("audiences", {}).items():
                audiences[audience] += count
            for role, count in clients.connections(r).items():
                connections[role] += count
        yield GaugeMetricFamily("lobby_web_processes", "Web processes of this service that have served a live "
                                "stream since they started (all hosts)",
                                value=live["processes"])
        family = GaugeMetricFamily("lobby_live_clients", "Open Server-Sent Events clients of this service (all its "
                                   "processes), by audience (screen, terminal, device, floor)", labels=["audience"])
        for audience, count in sorted(audiences.items()):
            family.add_metric([audience], count)
        yield family
        yield GaugeMetricFamily("lobby_live_streams", "Streams this service's processes read, each once per "
                                "process whatever its clients", value=live["streams"])
        yield GaugeMetricFamily("lobby_live_readers", "Stream readers of this service's processes: one Redis "
                                "connection each", value=live["readers"])
        family = GaugeMetricFamily("lobby_redis_connections", "Connections the Redis servers have (all shards), by "
                                   "the role of the process holding them (other: not a lobby process)",
                                   labels=["role"])
        for role, count in sorted(connections.items()):
            family.add_metric([role], count)
        yield family

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
    ProcessCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
