"""Supervision: the branch watches its own screens, terminals and lines, and pages what nobody would otherwise see.

Three rules, checked every second with the watch (services/domain/watch.py):

- `endpoint_offline`: a display or kiosk while any counter is open, or the terminal of an open counter, that is
  supervised (heard of in the last day: services/domain/presence.py) and has not been live for the branch's
  `supervision.offline_after_s`. Normal priority; high for a display while a VIP redirect is in force, since the
  notice sending VIP customers to the other window is then seen by nobody (rule 1).
- `long_service`: a counter serving one ticket longer than its category's `long_service_minutes`.
- `queue_long`: a category whose longest wait passes the branch's `wait_alert_minutes` (0: never), naming the
  closed or paused counters that could serve it.

Each incident is paged once. The incident (`keys.incidents`, a field `<kind>:<subject>`) and the alert with its
outbox entry are written in one MULTI under a WATCH of the incidents: a crash cannot page twice or not at all.
When the condition ends, the incident goes and its page is cleared by the system in one transaction
(pages.queue_clear), saying how long it lasted; the rule is armed again for the next incident.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import redis

from services.domain import alerts, counters, keys, pages, presence, tickets
from services.domain.branch import Branch
from services.domain.clock import SYSTEM, Clock, business_day, from_ms, to_ms
from services.domain.contracts import PageKind, Priority
from services.domain.counters import CounterState, RedirectRule
from services.domain.lines import LineHead
from services.domain.presence import Presence


@dataclass(frozen=True)
class Finding:
    """A condition that holds now: what it is about (`<kind>:<subject>`), since when (ms), and the page it gets."""

    key: str
    since_ms: int
    kind: PageKind
    priority: Priority
    counter: str | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def minutes(ms: int) -> int:
    return max(1, round(ms / 60_000))


def offline_findings(branch: Branch, states: dict[str, CounterState], present: dict[str, Presence],
                     rules: dict[str, RedirectRule], now_ms: int) -> list[Finding]:
    """Find the supervised screens and terminals offline for offline_after_s."""
    threshold_ms = int(branch.supervision.offline_after_s * 1000)
    serving = {counter_id for counter_id, state in states.items() if state.status != counters.CLOSED}
    vip_redirect = any(category.vip for category in branch.categories if category.id in rules)
    watched: list[tuple[str, str, str | None, str]] = []  # endpoint, kind, counter, what it is (zh)
    if serving:
        watched += [(presence.endpoint(s.kind, s.id), s.kind, None, f"{s.name}「{s.id}」") for s in branch.screens]
    watched += [(presence.endpoint(presence.TERMINAL, c.id), presence.TERMINAL, c.id, f"{c.window} 窗口终端")
                for c in branch.counters if c.id in serving]
    found = []
    for name, kind, counter_id, label in watched:
        state = present.get(name)
        since_ms = state.offline_since_ms if state else None
        if since_ms is None or now_ms - since_ms < threshold_ms:
            continue
        urgent_display = kind == "display" and vip_redirect
        found.append(Finding(
            key=f"{PageKind.ENDPOINT_OFFLINE}:{name}", since_ms=since_ms, kind=PageKind.ENDPOINT_OFFLINE,
            priority=Priority.HIGH if urgent_display else Priority.NORMAL, counter=counter_id,
            message=f"{label}已离线 {minutes(now_ms - since_ms)} 分钟"
                    + ("，贵宾引导提示无人看到" if urgent_display else ""),
            details={"endpoint_kind": kind, "endpoint": name.split(":", 1)[1],
                     "offline_since": from_ms(since_ms, branch), "vip_redirect": urgent_display},
        ))
    return found


def long_service_findings(branch: Branch, states: dict[str, CounterState], called_ms: dict[str, int | None],
                          now_ms: int) -> list[Finding]:
    """Find the counters serving one ticket for longer than its category's long_service_minutes."""
    found = []
    for counter in branch.counters:
        state = states.get(counter.id)
        number = state.serving if state else None
        since_ms = called_ms.get(counter.id)
        category = branch.category_for_number(number) if number else None
        if number is None or since_ms is None or category is None:
            continue
        serving_ms = now_ms - since_ms
        if serving_ms < category.long_service_ms:
            continue
        found.append(Finding(
            key=f"{PageKind.LONG_SERVICE}:{counter.id}:{number}", since_ms=since_ms, kind=PageKind.LONG_SERVICE,
            priority=Priority.NORMAL, counter=counter.id,
            message=f"{counter.window} 窗口办理 {number} 已 {minutes(serving_ms)} 分钟"
                    f"（{category.name}通常 {category.service_minutes:g} 分钟）",
            details={"ticket": number, "category": category.id, "serving_s": serving_ms // 1000,
                     "long_service_minutes": category.long_service_ms / 60_000},
        ))
    return found


def queue_findings(branch: Branch, states: dict[str, CounterState], heads: dict[str, LineHead],
                   now_ms: int) -> list[Finding]:
    """Find the lines whose longest wait passes wait_alert_minutes, with the counters that could serve them but
    are closed or paused."""
    if not branch.wait_alert_minutes:
        return []
    threshold_ms = int(branch.wait_alert_minutes * 60_000)
    found = []
    for category in branch.categories:
        head = heads.get(category.id)
        if head is None or head.oldest_ms is None or now_ms - head.oldest_ms < threshold_ms:
            continue
        idle = [{"counter": c.id, "window": c.window, "status": states[c.id].status}
                for c in branch.counters
                if category.id in c.serves and c.id in states and states[c.id].status != counters.OPEN]
        waited_ms = now_ms - head.oldest_ms
        found.append(Finding(
            key=f"{PageKind.QUEUE_LONG}:{category.id}", since_ms=head.oldest_ms + threshold_ms,
            kind=PageKind.QUEUE_LONG, priority=Priority.NORMAL, counter=None,
            message=f"{category.name}最长已等候 {minutes(waited_ms)} 分钟，{head.count} 人等候"
                    + (f"；{'、'.join(i['window'] + ' 窗口' for i in idle)}未在服务" if idle else ""),
            details={"category": category.id, "longest_wait_s": waited_ms // 1000, "waiting": head.count,
                     "wait_alert_minutes": branch.wait_alert_minutes, "idle_counters": idle},
        ))
    return found


def findings(r: redis.Redis, branch: Branch, clock: Clock = SYSTEM) -> list[Finding]:
    """Return every condition of the branch that holds now."""
    return _read(r, branch, clock)[0]


def check(r: redis.Redis, branch: Branch, clock: Clock = SYSTEM) -> tuple[int, int]:
    """Page each new incident once, and clear the page of each that ended; return how many of each."""
    now, held = _read(r, branch, clock)
    current = {f.key: f for f in now}
    paged = sum(_open(r, branch, finding, clock) for key, finding in current.items() if key not in held)
    cleared = sum(_close(r, branch, key, clock) for key in held if key not in current)
    return paged, cleared


def _read(r: redis.Redis, branch: Branch, clock: Clock) -> tuple[list[Finding], set[str]]:
    """Read what the rules need, and the incidents held, in one round trip (two while a counter serves)."""
    now = clock.now()
    now_ms = to_ms(now)
    day_lines = tickets.lines(r, branch, business_day(branch, now))
    names = [presence.endpoint(s.kind, s.id) for s in branch.screens]
    names += [presence.endpoint(presence.TERMINAL, c.id) for c in branch.counters]
    line_keys = {c.id: day_lines.key(c.id) for c in branch.categories}
    pipe = r.pipeline(transaction=False)
    counters.queue_routing_state(pipe, branch)
    presence.queue_of(pipe, branch, names)
    day_lines.queue_heads(pipe, line_keys)
    pipe.hkeys(keys.incidents(branch.id))
    replies = iter(pipe.execute())
    states, rules = counters.routing_state(branch, replies)
    present = {p.endpoint: p for p in presence.read_of(branch, names, replies, now_ms)}
    heads = day_lines.read_heads(line_keys, replies)
    held = set(next(replies))
    serving = [(counter_id, state.serving_day or business_day(branch, now), state.serving)
               for counter_id, state in states.items() if state.serving]
    called_ms: dict[str, int | None] = {}
    if serving:
        pipe = r.pipeline(transaction=False)
        for _, day, number in serving:
            pipe.hget(keys.ticket(branch.id, day, number), "called_ms")
        called_ms = {counter_id: int(float(ms)) if ms else None
                     for (counter_id, _, _), ms in zip(serving, pipe.execute(), strict=True)}
    found = [*offline_findings(branch, states, present, rules, now_ms),
             *long_service_findings(branch, states, called_ms, now_ms),
             *queue_findings(branch, states, heads, now_ms)]
    return found, held


def _open(r: redis.Redis, branch: Branch, finding: Finding, clock: Clock) -> bool:
    incidents = keys.incidents(branch.id)

    def write(pipe: redis.client.Pipeline) -> bool:
        if pipe.hexists(incidents, finding.key):
            return False  # another worker paged it first
        moment = clock.now()
        request = alerts.page_request(branch, finding.counter, finding.kind, finding.priority, finding.message,
                                      finding.details, moment)
        pipe.multi()
        pipe.hset(incidents, finding.key, json.dumps({"alert_id": request.alert_id, "since_ms": finding.since_ms}))
        alerts.stage(pipe, request)
        return True

    return bool(r.transaction(write, incidents, value_from_callable=True))


def _close(r: redis.Redis, branch: Branch, key: str, clock: Clock) -> bool:
    incidents = keys.incidents(branch.id)

    def write(pipe: redis.client.Pipeline) -> bool:
        raw = pipe.hget(incidents, key)
        if raw is None:
            return False  # another worker closed it first
        incident = json.loads(raw)
        open_pages = pages.watch_for_clear(pipe, branch, [incident["alert_id"]])
        moment = clock.now()
        lasted_s = max(0, (to_ms(moment) - int(incident["since_ms"])) // 1000)  # the condition's whole length
        pipe.multi()
        pipe.hdel(incidents, key)
        pages.queue_clear(pipe, branch, [incident["alert_id"]], open_pages,
                          f"{_ENDED[key.split(':', 1)[0]]} after {lasted_s // 60}:{lasted_s % 60:02d}", moment)
        return True

    return bool(r.transaction(write, incidents, value_from_callable=True))


_ENDED = {PageKind.ENDPOINT_OFFLINE: "back online", PageKind.LONG_SERVICE: "service ended",
          PageKind.QUEUE_LONG: "back under the limit"}
