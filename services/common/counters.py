"""Counter state and routing: who is open, who pauses, and which lines each counter calls from.

The counter service writes this state; the kiosk reads it for the screen's redirect notice
and wait estimates. A redirect (rule 1) is a routing override: while the VIP counter pauses,
its categories are called first by the counter it redirects to.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis

from services.common import keys
from services.common.config import Branch
from services.common.lines import Lane, Lines

OPEN, PAUSED, CLOSED = "open", "paused", "closed"
REDIRECT_REASON = "vip_counter_paused"
CLOSED_REASON = "counter_closed"
# The lane name of the tickets transferred to a counter.
TRANSFERS = "transfers"


@dataclass(frozen=True)
class CounterState:
    id: str
    status: str
    serving: str | None
    pause: dict[str, Any] | None
    # The business day of the ticket served: a counter may still serve yesterday's ticket after midnight.
    serving_day: str | None = None


@dataclass(frozen=True)
class RedirectRule:
    category: str
    from_counter: str
    to_counter: str
    window: str
    since: str
    reason: str = REDIRECT_REASON


def load(r: redis.Redis, branch: Branch, counter_id: str) -> CounterState:
    raw = r.hgetall(keys.counter(branch.id, counter_id))
    return _state(counter_id, raw)


def load_all(r: redis.Redis, branch: Branch) -> dict[str, CounterState]:
    pipe = r.pipeline(transaction=False)
    for c in branch.counters:
        pipe.hgetall(keys.counter(branch.id, c.id))
    return {c.id: _state(c.id, raw) for c, raw in zip(branch.counters, pipe.execute(), strict=True)}


def _state(counter_id: str, raw: dict[str, str]) -> CounterState:
    pause = raw.get("pause")
    return CounterState(
        id=counter_id,
        status=raw.get("status") or OPEN,
        serving=raw.get("serving") or None,
        pause=json.loads(pause) if pause else None,
        serving_day=raw.get("serving_day") or None,
    )


def redirects(r: redis.Redis, branch: Branch) -> dict[str, RedirectRule]:
    """Return the redirects in force, by category."""
    return _rules(r.hgetall(keys.redirects(branch.id)))


def _rules(raw: dict[str, str]) -> dict[str, RedirectRule]:
    return {cat: RedirectRule(**json.loads(rule)) for cat, rule in raw.items()}


def queue_routing_state(pipe: redis.client.Pipeline, branch: Branch) -> None:
    """Queue the reads of every counter's state and of the redirects; take their replies with routing_state."""
    for c in branch.counters:
        pipe.hgetall(keys.counter(branch.id, c.id))
    pipe.hgetall(keys.redirects(branch.id))


def routing_state(branch: Branch, replies: Iterator[Any]) -> tuple[dict[str, CounterState], dict[str, RedirectRule]]:
    """Take the replies queue_routing_state asked for: the counters' states and the redirects in force."""
    states = {c.id: _state(c.id, next(replies)) for c in branch.counters}
    return states, _rules(next(replies))


def call_order(branch: Branch, counter_id: str, rules: dict[str, RedirectRule]) -> list[str]:
    """Return the categories this counter calls from, first to last."""
    counter = branch.counter(counter_id)
    if counter is None:
        return []
    redirected_here = [cat for cat, rule in rules.items() if rule.to_counter == counter_id]
    # Redirected customers have waited for a paused counter already: they go first, in config order.
    first = [c.id for c in branch.categories if c.id in redirected_here]
    return first + [c for c in counter.serves if c not in first]


def routing(branch: Branch, counter_id: str, rules: dict[str, RedirectRule], lines: Lines) -> list[Lane]:
    """Return the lanes this counter calls from: its transfers, redirected categories, then its own."""
    counter = branch.counter(counter_id)
    if counter is None:
        return []
    redirected = {cat for cat, rule in rules.items() if rule.to_counter == counter_id}
    order = call_order(branch, counter_id, rules)
    lanes = [Lane(name=TRANSFERS, key=lines.counter_key(counter_id), priority=True)]
    for category in order:
        lanes.append(Lane(
            name=category, key=lines.key(category), weight=counter.weights.get(category, 1),
            wait_limit_ms=branch.wait_limit_ms(category), priority=category in redirected,
        ))
    return lanes


def serving_counters(branch: Branch, category: str, states: dict[str, CounterState],
                     rules: dict[str, RedirectRule]) -> int:
    """Count the open counters that call this category now (paused and closed ones do not count)."""
    count = 0
    for c in branch.counters:
        if states[c.id].status != OPEN:
            continue
        rule = rules.get(category)
        if category in c.serves or (rule is not None and rule.to_counter == c.id):
            count += 1
    return count
