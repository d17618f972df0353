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

from services.domain import counters, keys, pages, scripts
from services.domain.branch import Branch, Category
from services.domain.clock import SYSTEM, Clock, business_day, local_iso, to_ms
from services.domain.counters import CounterState, RedirectRule
from services.domain.limits import Allowance
from services.domain.lines import EstimateTerms, Lines, issued
from services.domain.once import Once
from services.domain.schemas import Redirect, Ticket

# How many services the configured service time weighs in the day's average.
PRIOR_SAMPLES = 3


def lines(r: redis.Redis, branch: Branch, day: str) -> Lines:
    """Return the waiting lines of a branch on a business day (clock.business_day)."""
    return Lines(r, branch.id, day, branch.estimate_samples, branch.history_ttl_s)


def take(r: redis.Redis, branch: Branch, category: Category, allowances: Sequence[Allowance] = (),
         once_: Once | None = None, clock: Clock = SYSTEM) -> Ticket:
    """Issue the next ticket of a category today, counted in the allowances; read what its holder sees.

    One round trip: the issue script (which works out the wait estimate and keeps it on the ticket) and the reads
    the rest of the holder's view needs (counters, redirects, the category's service times) go in one pipeline.
    Raises RateLimited, having written nothing, when an allowance is used up. Under a Once that issued a ticket
    already, that ticket is read as it is now.
    """
    return issue(r, branch, category, allowances, once_, clock)[0]


def issue(r: redis.Redis, branch: Branch, category: Category, allowances: Sequence[Allowance] = (),
          once_: Once | None = None, clock: Clock = SYSTEM) -> tuple[Ticket, TicketReader]:
    """Take a ticket as `take` does; return it with the reader that saw the branch as it was issued (every
    counter's state and the redirects in force)."""
    moment = clock.now()
    day_lines = lines(r, branch, business_day(branch, moment))
    issued_at = local_iso(branch, moment)

    terms = EstimateTerms(prior_s=category.service_minutes * 60, prior_n=PRIOR_SAMPLES,
                          counters=tuple((c.id, int(category.id in c.serves), c.pause_redirect or "")
                                         for c in branch.counters))

    def build(pipe: redis.client.Pipeline) -> None:
        day_lines.queue_add(pipe, category.id, category.prefix, issued_at, to_ms(moment), terms, allowances, once_)
        counters.queue_routing_state(pipe, branch)
        day_lines.queue_service_times(pipe, [category.id])

    replies = iter(scripts.run(r, build))
    new = issued(next(replies))
    states, rules = counters.routing_state(branch, replies)
    reader = TicketReader(r, branch, day_lines.day, states=states, rules=rules,
                          service_times=day_lines.service_times(replies, [category.id]), clock=clock)
    if not new.fresh:
        kept = reader.get(new.number)
        assert kept is not None, "a ticket issued under a Once is kept with it"
        return kept, reader
    raw = {"number": new.number, "category": category.id, "status": "waiting", "issued_at": issued_at}
    # The wait told is the one the script kept on the ticket (it works it out as the reader does).
    return reader.view(raw, new.position).model_copy(update={"estimated_wait_s": new.estimate_s}), reader


def average_service_s(configured_minutes: float, samples_ms: list[int]) -> float:
    """Average today's service times with the configured time counted as PRIOR_SAMPLES of them."""
    prior_s = configured_minutes * 60
    return (sum(samples_ms) / 1000 + PRIOR_SAMPLES * prior_s) / (len(samples_ms) + PRIOR_SAMPLES)


def estimate_s(position: int, service_s: float, serving: int, free: int = 0) -> int | None:
    """Estimate the wait of the position-th customer of a line called by `serving` open counters, `free` of
    which serve nobody now: 0 (next up) when a free counter is there for them."""
    if serving == 0:
        return None
    if position <= free:
        return 0
    return math.ceil(position * service_s / serving)


class TicketReader:
    """Reads tickets of one branch and day (default: the clock's today), with counter states, redirects and
    service times fetched once."""

    def __init__(self, r: redis.Redis, branch: Branch, day: str | None = None, *,
                 states: dict[str, CounterState] | None = None, rules: dict[str, RedirectRule] | None = None,
                 service_times: dict[str, list[int]] | None = None, clock: Clock = SYSTEM):
        self.r = r
        self.branch = branch
        self.lines = lines(r, branch, day or business_day(branch, clock.now()))
        if states is None or rules is None:
            pipe = r.pipeline(transaction=False)
            counters.queue_routing_state(pipe, branch)
            states, rules = counters.routing_state(branch, iter(pipe.execute()))
        self.states: dict[str, CounterState] = states
        self.rules: dict[str, RedirectRule] = rules
        self.targets = counters.redirect_targets(branch, states, rules)
        self._service_s = {c.id: average_service_s(c.service_minutes, service_times[c.id])
                           for c in branch.categories if service_times and c.id in service_times}

    def calling(self, category: str) -> list[str]:
        """Return the open counters calling a category now."""
        return counters.calling(self.branch, category, self.states, self.targets)

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
        calling = [counter] if counter is not None and counter in self.states else []
        if counter is None:
            calling = self.calling(category)
        calling = [c for c in calling if self.states[c].status == counters.OPEN]
        free = sum(1 for c in calling if self.states[c].serving is None)
        return estimate_s(position, self.service_s(category), len(calling), free)

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
            redirect = Redirect(window=self.window_of(self.targets.get(category)), reason=rule.reason)
        return Ticket(
            number=raw["number"],
            category=category,
            status=raw["status"],
            position=position,
            estimated_wait_s=self.estimate(category, position, to_counter) if position else None,
            issued_at=raw["issued_at"],
            called_at=raw.get("called_at") or None,
            window=raw.get("window") or self.window_of(to_counter),
            redirect=redirect,
            recalls=int(raw.get("recalls") or 0),
            transfers=int(raw.get("transfers") or 0),
        )

    def window_of(self, counter_id: str | None) -> str | None:
        """Return a counter's window (None for no counter)."""
        counter = self.branch.counter(counter_id) if counter_id else None
        return counter.window if counter else None


def close_past_days(r: redis.Redis, branch: Branch, clock: Clock = SYSTEM) -> int:
    """Close the tickets still waiting from earlier business days as expired; return how many."""
    moment = clock.now()
    today = business_day(branch, moment)
    expired = 0
    for day in sorted(d for d in r.smembers(keys.days(branch.id)) if d < today):
        day_lines = lines(r, branch, day)
        line_keys = [day_lines.key(c.id) for c in branch.categories]
        line_keys += [day_lines.counter_key(c.id) for c in branch.counters]
        closed, cleared = day_lines.expire(line_keys, local_iso(branch, moment))
        pages.clear(r, branch, cleared, clock)  # long waits that were paged are over: their pages go
        expired += closed
        pipe = r.pipeline(transaction=True)
        pipe.sadd(keys.closed_days(branch.id), day)  # for the pager's archive (services/pager/archive.py)
        pipe.srem(keys.days(branch.id), day)
        pipe.execute()
    return expired
