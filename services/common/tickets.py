"""Tickets: issuing, reading, and the public view with position, wait estimate and redirect."""

from __future__ import annotations

import math

import redis

from services.common import clock, counters, keys
from services.common.config import Branch, Category
from services.common.counters import CounterState, RedirectRule
from services.common.lines import Lines
from services.common.schemas import Redirect, Ticket


def lines(r: redis.Redis, branch: Branch, day: str | None = None) -> Lines:
    return Lines(r, branch.id, day or clock.business_day(branch))


def issue(r: redis.Redis, branch: Branch, category: Category) -> str:
    """Issue the next ticket of a category today; return its number."""
    moment = clock.now()
    day = clock.business_day(branch, moment)
    return lines(r, branch, day).add(
        category.id, category.prefix, clock.local_iso(branch, moment), int(moment.timestamp() * 1000)
    )


def estimate_s(branch: Branch, category: str, position: int, serving: int) -> int | None:
    """Estimate the wait of the position-th customer: a service time per customer, shared by counters."""
    cat = branch.category(category)
    if cat is None or serving == 0:
        return None
    return math.ceil(position * cat.service_minutes * 60 / serving)


class TicketReader:
    """Reads tickets of one branch and day, with the counter state fetched once."""

    def __init__(self, r: redis.Redis, branch: Branch, day: str | None = None):
        self.r = r
        self.branch = branch
        self.lines = lines(r, branch, day)
        self.states: dict[str, CounterState] = counters.load_all(r, branch)
        self.rules: dict[str, RedirectRule] = counters.redirects(r, branch)

    def serving(self, category: str) -> int:
        return counters.serving_counters(self.branch, category, self.states, self.rules)

    def get(self, number: str) -> Ticket | None:
        raw = self.r.hgetall(keys.ticket(self.branch.id, self.lines.day, number))
        if not raw:
            return None
        category = raw["category"]
        position = self.lines.position(category, number) if raw["status"] == "waiting" else None
        redirect = None
        rule = self.rules.get(category)
        if rule is not None and position is not None:
            redirect = Redirect(window=rule.window, reason=rule.reason)
        return Ticket(
            number=raw["number"],
            category=category,
            status=raw["status"],
            position=position,
            estimated_wait_s=(
                estimate_s(self.branch, category, position, self.serving(category)) if position else None
            ),
            issued_at=raw["issued_at"],
            called_at=raw.get("called_at") or None,
            window=raw.get("window") or None,
            redirect=redirect,
        )
