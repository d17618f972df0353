"""The closed business days Redis holds, and which of them the records database holds too.

A day closes when the watch expires its last waiting tickets (tickets.close_past_days) and joins the branch's
closed days; the pager's archive copies it into the records database and notes it archived; retention removes
it from Redis once archived and older than the branch's redis_days (services/pager/archive.py, retention.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import redis

from services.domain import keys
from services.domain.branch import Branch
from services.domain.clock import SYSTEM, Clock, business_day


def closed(r: redis.Redis, branch: Branch) -> tuple[set[str], set[str]]:
    """Return the closed days Redis holds, and the days the database holds."""
    pipe = r.pipeline(transaction=False)
    pipe.smembers(keys.closed_days(branch.id))
    pipe.hkeys(keys.archived(branch.id))
    held, archived = pipe.execute()
    return set(held), set(archived)


def waiting(r: redis.Redis, branch: Branch) -> list[str]:
    """Return the closed days of a branch that Redis holds and the database does not yet, oldest first."""
    held, archived = closed(r, branch)
    return sorted(held - archived)


def is_archived(r: redis.Redis, branch: Branch, day: str) -> bool:
    """Say whether the records database holds a day (Redis notes it once the archive has committed)."""
    return bool(r.hexists(keys.archived(branch.id), day))


@dataclass(frozen=True)
class Lag:
    """How far a branch's archive is behind: closed days not archived, and the oldest's age in days."""

    days: int
    oldest: str | None
    oldest_age_days: int


def lag(r: redis.Redis, branch: Branch, clock: Clock = SYSTEM) -> Lag:
    """Return a branch's archive lag (0 days when every closed day is archived)."""
    behind = waiting(r, branch)
    if not behind:
        return Lag(0, None, 0)
    today = date.fromisoformat(business_day(branch, clock.now()))
    return Lag(len(behind), behind[0], (today - date.fromisoformat(behind[0])).days)
