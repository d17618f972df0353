"""Tickets: issuing, reading, and the public view with position, wait estimate and redirect.

The wait estimate of a ticket (README, "Wait estimates") is

    position × average service time of its category today ÷ open counters calling that category

where the average is over the category's last `estimate_samples` services today, with the configured
`service_minutes` counted as PRIOR_SAMPLES services more, so the first customers of the day do not
swing it. Paused and closed counters do not count; with none open the estimate is null.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import redis

from services.common import clock, counters, keys
from services.common.config import Branch, Category
from services.common.counters import CounterState, RedirectRule
from services.common.lines import Allowance, Lines, issued, run
from services.common.schemas import Redirect, Ticket

# How many services the configured service time weighs in the day's average.
PRIOR_SAMPLES = 3


def lines(r: redis.Redis, branch: Branch, day: str | None = None) -> Lines:
    return Lines(r, branch.id, day or clock.business_day(branch), branch.estimate_samples, branch.history_ttl_s)


def issue(r: redis.Redis, branch: Branch, category: Category) -> str:
    """Issue the next ticket of a category today; return its number."""
    return take(r, branch, category).number


def take(r: redis.Redis, branch: Branch, category: Category, allowances: Sequence[Allowance] = ()) -> Ticket:
    """Issue the next ticket of a category today, counted in the allowances; read what its holder sees.

    One round trip: the issue script and the reads its wait estimate needs (counters, redirects, the
    category's service times) go in one pipeline. Raises RateLimited, having written nothing, when an
    allowance is used up.
    """
    moment = clock.now()
    day_lines = lines(r, branch, clock.business_day(branch, moment))
    issued_at = clock.local_iso(branch, moment)

    def build(pipe: redis.client.Pipeline) -> None:
        day_lines.queue_add(pipe, category.id, category.prefix, issued_at, int(moment.timestamp() * 1000),
                            allowances)
        counters.queue_routing_state(pipe, branch)
        day_lines.queue_service_times(pipe, [category.id])

    replies = iter(run(r, build))
    new = issued(next(replies))
    states, rules = counters.routing_state(branch, replies)
    reader = TicketReader(r, branch, day_lines.day, states=states, rules=rules,
                          service_times=day_lines.service_times(replies, [category.id]))
    raw = {"number": new.number, "category": category.id, "status": "waiting", "issued_at": issued_at}
    return reader.view(raw, new.position)


def average_service_s(configured_minutes: float, samples_ms: list[int]) -> float:
    """Average today's service times with the configured time counted as PRIOR_SAMPLES of them."""
    prior_s = configured_minutes * 60
    return (sum(samples_ms) / 1000 + PRIOR_SAMPLES * prior_s) / (len(samples_ms) + PRIOR_SAMPLES)


def estimate_s(position: int, service_s: float, serving: int) -> int | None:
    """Estimate the wait of the position-th customer of a line served by `serving` counters."""
    if serving == 0:
        return None
    return math.ceil(position * service_s / serving)


class TicketReader:
    """Reads tickets of one branch and day, with counter states, redirects and service times fetched once."""

    def __init__(self, r: redis.Redis, branch: Branch, day: str | None = None, *,
                 states: dict[str, CounterState] | None = None, rules: dict[str, RedirectRule] | None = None,
                 service_times: dict[str, list[int]] | None = None):
        self.r = r
        self.branch = branch
        self.lines = lines(r, branch, day)
        if states is None or rules is None:
            pipe = r.pipeline(transaction=False)
            counters.queue_routing_state(pipe, branch)
            states, rules = counters.routing_state(branch, iter(pipe.execute()))
        self.states: dict[str, CounterState] = states
        self.rules: dict[str, RedirectRule] = rules
        self._service_s = {c.id: average_service_s(c.service_minutes, service_times[c.id])
                           for c in branch.categories if service_times and c.id in service_times}

    def serving(self, category: str) -> int:
        return counters.serving_counters(self.branch, category, self.states, self.rules)

    def service_s(self, category: str) -> float:
        """Return the average service time of a category today (seconds)."""
        if category not in self._service_s:
            missing = [c.id for c in self.branch.categories if c.id not in self._service_s]
            times = self.lines.service_times_ms(missing)
            self._service_s |= {c.id: average_service_s(c.service_minutes, times[c.id])
                                for c in self.branch.categories if c.id in times}
        return self._service_s.get(category, 0.0)

    def estimate(self, category: str, position: int, counter: str | None = None) -> int | None:
        """Estimate the wait at this position of a category's line, or of one counter's line."""
        if counter is not None:
            open_ = self.states.get(counter) is not None and self.states[counter].status == counters.OPEN
            return estimate_s(position, self.service_s(category), 1 if open_ else 0)
        return estimate_s(position, self.service_s(category), self.serving(category))

    def get(self, number: str) -> Ticket | None:
        raw = self.r.hgetall(keys.ticket(self.branch.id, self.lines.day, number))
        if not raw:
            return None
        to_counter = raw.get("to_counter") or None
        position = None
        if raw["status"] == "waiting":
            line = self.lines.counter_key(to_counter) if to_counter else self.lines.key(raw["category"])
            position = self.lines.position(line, number)
        return self.view(raw, position)

    def view(self, raw: dict[str, str], position: int | None) -> Ticket:
        """Return what the holder of a ticket sees, from its stored fields and its place in its line."""
        category = raw["category"]
        to_counter = raw.get("to_counter") or None
        redirect = None
        rule = self.rules.get(category)
        if rule is not None and position is not None and to_counter is None:
            redirect = Redirect(window=rule.window, reason=rule.reason)
        return Ticket(
            number=raw["number"],
            category=category,
            status=raw["status"],
            position=position,
            estimated_wait_s=self.estimate(category, position, to_counter) if position else None,
            issued_at=raw["issued_at"],
            called_at=raw.get("called_at") or None,
            window=raw.get("window") or self._window_of(to_counter),
            redirect=redirect,
            recalls=int(raw.get("recalls") or 0),
            transfers=int(raw.get("transfers") or 0),
        )

    def _window_of(self, counter_id: str | None) -> str | None:
        counter = self.branch.counter(counter_id) if counter_id else None
        return counter.window if counter else None


def close_past_days(r: redis.Redis, branch: Branch) -> int:
    """Close the tickets still waiting from earlier business days as expired; return how many."""
    today = clock.business_day(branch)
    expired = 0
    for day in sorted(d for d in r.smembers(keys.days(branch.id)) if d < today):
        day_lines = lines(r, branch, day)
        line_keys = [day_lines.key(c.id) for c in branch.categories]
        line_keys += [day_lines.counter_key(c.id) for c in branch.counters]
        expired += day_lines.expire(line_keys, clock.local_iso(branch))
        r.srem(keys.days(branch.id), day)
    return expired
