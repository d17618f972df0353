"""A day's tickets, pauses and pages, read from Redis for one branch and one local date.

- tickets: the hashes numbered that day, prefix + 001..N for each category (N the day's sequence), in the
  category they were issued in (their number's), even when transferred later;
- pauses: those that ended that day (each `resume` records one in the day's list), and one still running
  that began that day, with its time so far;
- pages: those created that day, by created_at's local date.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from services.domain import counters, keys
from services.domain.branch import Branch
from services.domain.clock import parse_iso
from services.domain.schemas import Page
from services.pager.report.days import day_bounds_ms, local_day, seconds_between

# The statuses of a ticket that was called, so has a waiting time.
CALLED = ("called", "served", "no_show")


@dataclass(frozen=True)
class TicketRecord:
    """A ticket of the day as the report needs it."""

    number: str
    category: str  # the category it was issued in
    status: str
    issued_at: str
    called_at: str | None
    window: str | None

    @property
    def waited_s(self) -> float | None:
        """Return called_at − issued_at for a ticket that was called, or None for one never called."""
        if self.status not in CALLED or not self.called_at:
            return None
        return seconds_between(self.issued_at, self.called_at)


@dataclass(frozen=True)
class PauseRecord:
    """A pause of the day as the report needs it: ended (resumed_at set), or still running."""

    counter: str
    window: str
    reason: str
    note: str | None
    since: str
    resumed_at: str | None
    expected_minutes: int
    actual_s: int  # so far, while running
    alert_id: str | None = None  # the alert that paged the pause


@dataclass(frozen=True)
class DayRecords:
    """What the report is computed from: a day's tickets, pauses and pages, from Redis or the database."""

    tickets: list[TicketRecord]
    pauses: list[PauseRecord]
    pages: list[Page]


def read_day(r: redis.Redis, branch: Branch, day: str, now: datetime) -> DayRecords:
    """Read a day's records from Redis, as they stand at `now`."""
    return DayRecords(tickets=read_tickets(r, branch, day), pauses=read_pauses(r, branch, day, now),
                      pages=read_pages(r, branch, day))


def read_ticket_hashes(r: redis.Redis, branch: Branch, day: str) -> list[tuple[str, str, dict[str, str]]]:
    """Read every ticket numbered on a day as Redis keeps it: (category issued in, number, hash), category by
    category, in number order; a ticket removed or never written is left out."""
    pipe = r.pipeline(transaction=False)
    for category in branch.categories:
        pipe.get(keys.ticket_seq(branch.id, day, category.id))
    issued = {c.id: int(n or 0) for c, n in zip(branch.categories, pipe.execute(), strict=True)}
    numbers = [(c.id, f"{c.prefix}{n:03d}") for c in branch.categories for n in range(1, issued[c.id] + 1)]
    pipe = r.pipeline(transaction=False)
    for _, number in numbers:
        pipe.hgetall(keys.ticket(branch.id, day, number))
    return [(category, number, raw) for (category, number), raw in zip(numbers, pipe.execute(), strict=True)
            if raw and raw.get("issued_at")]


def read_tickets(r: redis.Redis, branch: Branch, day: str) -> list[TicketRecord]:
    """Read every ticket numbered on a day, category by category, in number order."""
    return [TicketRecord(number=number, category=category, status=raw.get("status", "waiting"),
                         issued_at=raw["issued_at"], called_at=raw.get("called_at") or None,
                         window=raw.get("window") or None)
            for category, number, raw in read_ticket_hashes(r, branch, day)]


def read_pauses(r: redis.Redis, branch: Branch, day: str, now: datetime) -> list[PauseRecord]:
    """Read the pauses that ended on a day, and those still running that began on it, by start time."""
    found = []
    for raw in r.lrange(keys.pauses(branch.id, day), 0, -1):
        record = json.loads(raw)
        found.append(_pause(record, int(record.get("actual_s") or 0), record.get("resumed_at")))
    for state in counters.load_all(r, branch).values():
        if state.status != counters.PAUSED or not state.pause or local_day(branch, state.pause["since"]) != day:
            continue
        counter = branch.counter(state.id)
        record = {**state.pause, "counter": state.id, "window": counter.window if counter else state.id}
        so_far = max(0, int((now - parse_iso(state.pause["since"])).total_seconds()))
        found.append(_pause(record, so_far, None))
    return sorted(found, key=lambda p: parse_iso(p.since))


def _pause(record: dict[str, Any], actual_s: int, resumed_at: str | None) -> PauseRecord:
    return PauseRecord(counter=record["counter"], window=record.get("window") or record["counter"],
                       reason=record["reason"], note=record.get("note") or None, since=record["since"],
                       resumed_at=resumed_at, expected_minutes=int(record["expected_minutes"]), actual_s=actual_s,
                       alert_id=record.get("alert_id") or None)


def page_raws_of_day(r: redis.Redis, branch: Branch, day: str, index: str) -> list[tuple[str, str | None]]:
    """Return (id, JSON) of the pages of an index (keys.pages_all, keys.pages_active) created on a day, by
    created_at's local date; a page the index names and Redis no longer holds comes with None."""
    start_ms, end_ms = day_bounds_ms(branch, day)
    margin = 60_000  # the index score and created_at are read from the clock a moment apart
    ids = r.zrangebyscore(index, start_ms - margin, end_ms + margin)
    raws = r.mget([keys.page(branch.id, i) for i in ids]) if ids else []
    return [(i, raw) for i, raw in zip(ids, raws, strict=True)
            if raw is None or local_day(branch, json.loads(raw)["created_at"]) == day]


def read_pages(r: redis.Redis, branch: Branch, day: str) -> list[Page]:
    """Read the pages created on a day (by created_at's local date), oldest first."""
    found = [Page.model_validate_json(raw) for _, raw in page_raws_of_day(r, branch, day, keys.pages_all(branch.id))
             if raw]
    return sorted(found, key=lambda p: p.created_at)
