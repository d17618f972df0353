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

from services.domain import keys
from services.domain.branch import Branch
from services.domain.lines import Lane, Lines

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


def redirect_targets(branch: Branch, states: dict[str, CounterState],
                     rules: dict[str, RedirectRule]) -> dict[str, str | None]:
    """Return, per redirected category, the counter that takes its customers now (None: no counter is open for
    them).

    That is the rule's own counter while it is open; else the next open counter down that counter's own
    pause_redirect; else another open counter that serves the category. A redirect never sends customers to
    a counter that is paused or closed.
    """
    targets: dict[str, str | None] = {}
    for category, rule in rules.items():
        seen, candidate, found = {rule.from_counter}, rule.to_counter, None
        while candidate and candidate not in seen and branch.counter(candidate) is not None:
            if states[candidate].status == OPEN:
                found = candidate
                break
            seen.add(candidate)
            candidate = branch.counter(candidate).pause_redirect  # type: ignore[union-attr]
        if found is None:
            found = next((c.id for c in branch.counters if c.id != rule.from_counter and category in c.serves
                          and states[c.id].status == OPEN), None)
        targets[category] = found
    return targets


def call_order(branch: Branch, counter_id: str, targets: dict[str, str | None]) -> list[str]:
    """Return the categories this counter calls from, first to last (targets: see redirect_targets)."""
    counter = branch.counter(counter_id)
    if counter is None:
        return []
    redirected_here = [cat for cat, target in targets.items() if target == counter_id]
    # Redirected customers have waited for a paused counter already: they go first, in config order.
    first = [c.id for c in branch.categories if c.id in redirected_here]
    return first + [c for c in counter.serves if c not in first]


def routing(branch: Branch, counter_id: str, targets: dict[str, str | None], lines: Lines) -> list[Lane]:
    """Return the lanes this counter calls from: its transfers, redirected categories, then its own."""
    counter = branch.counter(counter_id)
    if counter is None:
        return []
    redirected = {cat for cat, target in targets.items() if target == counter_id}
    lanes = [Lane(name=TRANSFERS, key=lines.counter_key(counter_id), priority=True)]
    for category in call_order(branch, counter_id, targets):
        lanes.append(Lane(
            name=category, key=lines.key(category), weight=counter.weights.get(category, 1),
            wait_limit_ms=branch.wait_limit_ms(category), priority=category in redirected,
        ))
    return lanes


def calling(branch: Branch, category: str, states: dict[str, CounterState],
            targets: dict[str, str | None]) -> list[str]:
    """Return the open counters that call this category now (paused and closed ones do not)."""
    return [c.id for c in branch.counters if states[c.id].status == OPEN
            and (category in c.serves or targets.get(category) == c.id)]
