"""What the kiosk worker does: keep each lobby screen's feed current.

RQ jobs from the counters (contracts.py, item 3) announce a call, or a change of routing (a pause, a resume, a
closing, an opening, a transfer); and every REDRAW_EVERY_S the worker redraws the waiting counts of the screens
that took tickets since (item 5): a burst of tickets is one redraw and one `waiting` event, not one per ticket
(BENCHMARKS.md, B3), and a screen is never more than this behind the tickets issued.
"""

from __future__ import annotations

from typing import Any

import redis

from services.domain import keys
from services.domain.branch import Branch
from services.domain.contracts import ScreenChanged, TicketCalled
from services.kiosk import screen
from services.runtime.worker import context

REDRAW_EVERY_S = 0.2


def ticket_called(payload: dict[str, Any]) -> None:
    """Announce a call on the screen: the ticket, its window, and the lines as they are now."""
    call = TicketCalled.model_validate(payload)
    ctx = context()
    branch = ctx.branches[call.branch]
    screen.publish(ctx.for_branch(branch.id), branch, called={
        "number": call.number, "category": call.category, "window": call.window,
        "called_at": call.called_at, "recall": call.recall,
    })


def screen_changed(payload: dict[str, Any]) -> None:
    """Refresh notices and waiting counts after a pause, a resume or another routing change."""
    change = ScreenChanged.model_validate(payload)
    ctx = context()
    screen.publish(ctx.for_branch(change.branch), ctx.branches[change.branch], notice=True)


def redraw_stale_screens(r: redis.Redis, branches: dict[str, Branch]) -> int:
    """Redraw the waiting counts of every screen that got tickets since the last round; return how many."""
    stale = r.spop(keys.screens_stale(), 10_000) or []
    for done, branch_id in enumerate(stale):
        branch = branches.get(branch_id)
        if branch is None:
            continue  # a branch no longer configured has no screen
        try:
            screen.publish(r, branch)
        except Exception:
            r.sadd(keys.screens_stale(), *stale[done:])  # the rest are redrawn next round
            raise
    return len(stale)
