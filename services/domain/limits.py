"""Rate limits, counted in Redis: tickets per kiosk client, alert buttons per terminal.

Limits are set per branch (`[branches.rate_limits]`, in the limits library's notation, e.g. "30/minute;300/hour")
and counted in fixed windows, one counter key per window (`keys.allowance`). The check and the count are part
of the write they limit, in one atomic step: tickets inside the script that issues them (lua/issue.lua), alert
presses inside the MULTI that records them (services/domain/alerts.py). So presses at the same instant cannot all
pass the check before any is counted, only what was actually written uses up an allowance, and a request
repeated with its Idempotency-Key gets its first answer before any limit is looked at. A distress call is never
limited: the limit is for runaway scripts and stuck keys, not for a teller in trouble, and repeat presses fold
into one page anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from limits import RateLimitItem, parse_many

from services.domain import keys
from services.domain.branch import Branch


@dataclass(frozen=True)
class Allowance:
    """A rate-limit window a request counts in: at most `limit` per `window_s` seconds under `key`."""

    key: str
    limit: int
    window_s: int

    def retry_after_s(self, now_s: float) -> int:
        """Return the whole seconds until this fixed window ends."""
        return max(1, math.ceil(self.window_s - now_s % self.window_s))


class RateLimited(Exception):
    """An allowance is used up: nothing was written and nothing was counted."""

    def __init__(self, index: int):
        super().__init__(f"allowance {index} used up")
        self.index = index


@lru_cache(maxsize=256)
def _items(limits: str) -> tuple[RateLimitItem, ...]:
    return tuple(parse_many(limits))


def allowances(branch: Branch, limits: str, who: str, now_s: float) -> list[Allowance]:
    """Return the windows a request of `who` counts in now, one per limit."""
    found = []
    for item in _items(limits):
        window_s = item.get_expiry()
        start = int(now_s // window_s * window_s)
        found.append(Allowance(keys.allowance(branch.id, who, window_s, start), item.amount, window_s))
    return found


def ticket_allowances(branch: Branch, client: str, now_s: float) -> list[Allowance]:
    """Return the windows a kiosk client's ticket counts in now."""
    return allowances(branch, branch.rate_limits.tickets, f"kiosk:{client}", now_s)


def alert_allowances(branch: Branch, token_id: str, now_s: float) -> list[Allowance]:
    """Return the windows a terminal's alert press counts in now (by its token, so one stuck terminal cannot
    drown the others)."""
    return allowances(branch, branch.rate_limits.alerts, f"terminal:{token_id}", now_s)
