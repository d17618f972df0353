"""What simulated days come to (pooled, when several seeds ran): waits per category, the waits around each
pause, the wait estimates' error against the best knowable, and the pages.

Waits are called − issued, of the tickets called; percentiles are nearest-rank, as in the daily report.
A ticket waited "during a pause" when its wait overlapped a pause of a counter that serves its category.
The estimate's error is |estimate shown at issue − wait that followed|, over the tickets called that were given
one; the best knowable estimate (services/simulate/day.py) is measured the same way on the same tickets.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from services.domain.stats import percentile
from services.simulate.day import Day, TicketRecord


@dataclass(frozen=True)
class Waits:
    count: int
    mean_s: float | None
    p50_s: float | None
    p90_s: float | None
    max_s: float | None

    @classmethod
    def of(cls, waits: list[float]) -> Waits:
        return cls(count=len(waits), mean_s=statistics.fmean(waits) if waits else None,
                   p50_s=percentile(waits, 50), p90_s=percentile(waits, 90), max_s=max(waits, default=None))


@dataclass(frozen=True)
class Estimates:
    count: int
    error_s: float | None
    best_error_s: float | None

    @property
    def ratio(self) -> float | None:
        """How many times the best knowable error ours is (1.0: as good as can be known)."""
        if self.error_s is None or not self.best_error_s:
            return None
        return self.error_s / self.best_error_s


@dataclass(frozen=True)
class Outcome:
    customers: int
    served: int
    no_show: int
    not_called: int
    waits: dict[str, Waits]  # per category
    during_pause: dict[str, Waits]  # per category, the tickets whose wait overlapped a pause of their counter
    pause_longest: dict[str, float | None]  # per category, each day's longest of those, averaged over the days
    estimates: Estimates
    pages: int
    days: int


def outcome(days: list[Day], served: int, no_show: int) -> Outcome:
    """Sum one or more days up, pooled (served and no-show as their daily reports count them)."""
    every = [(day, t) for day in days for t in day.tickets.values()]
    called = [(day, t) for day, t in every if t.waited_s is not None]
    categories = days[0].branch.categories
    waits = {c.id: Waits.of([t.waited_s for _, t in called if t.category == c.id and t.waited_s is not None])
             for c in categories}
    paused = {c.id: [[t.waited_s for t in day.tickets.values() if t.category == c.id and t.waited_s is not None
                      and _in_pause(day, t)] for day in days] for c in categories}
    during = {c.id: Waits.of([w for per_day in paused[c.id] for w in per_day]) for c in categories}
    longest = {c.id: statistics.fmean(max(w) for w in paused[c.id] if w) if any(paused[c.id]) else None
               for c in categories}
    told = [t for _, t in called if t.estimate_s is not None and t.best_s is not None]
    estimates = Estimates(
        count=len(told),
        error_s=statistics.fmean(abs(t.estimate_s - t.waited_s) for t in told  # type: ignore[operator]
                                 ) if told else None,
        best_error_s=statistics.fmean(abs(t.best_s - t.waited_s) for t in told  # type: ignore[operator]
                                      ) if told else None,
    )
    return Outcome(customers=len(every), served=served, no_show=no_show, not_called=len(every) - len(called),
                   waits=waits, during_pause=during, pause_longest=longest, estimates=estimates,
                   pages=sum(d.pages_made for d in days), days=len(days))


def _in_pause(day: Day, ticket: TicketRecord) -> bool:
    assert ticket.called_ms is not None
    for counter_id, start, end in day.pauses:
        counter = day.branch.counter(counter_id)
        if counter is not None and ticket.category in counter.serves and ticket.issued_ms < end \
                and ticket.called_ms > start:
            return True
    return False


def pause_customers(day: Day) -> list[str]:
    """Return the categories the paused counters serve (the customers rule 1 is about), VIP first."""
    paused = {c for counter_id, _, _ in day.pauses for c in _serves(day, counter_id)}
    return [c.id for c in sorted(day.branch.categories, key=lambda c: not c.vip) if c.id in paused]


def _serves(day: Day, counter_id: str) -> list[str]:
    counter = day.branch.counter(counter_id)
    return list(counter.serves) if counter else []
