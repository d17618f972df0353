"""Jobs the kiosk worker runs (queue `kiosk`): keep the lobby screen's stream current."""

from __future__ import annotations

from typing import Any

import redis

from services.common import keys
from services.common.config import branches
from services.common.contracts import ScreenChanged, TicketCalled
from services.common.redis import for_branch, get_redis
from services.kiosk import screen

# How often the kiosk worker redraws the waiting counts of screens that got new tickets: a burst of tickets
# is one redraw and one `waiting` event, not one per ticket (BENCHMARKS.md, B3), and a screen is never more
# than this behind the tickets issued.
REDRAW_EVERY_S = 0.2


def ticket_called(payload: dict[str, Any]) -> None:
    """Announce a call on the screen: the ticket, its window, and the lines as they are now."""
    call = TicketCalled.model_validate(payload)
    branch = branches()[call.branch]
    screen.publish(for_branch(branch.id), branch, called={
        "number": call.number, "category": call.category, "window": call.window,
        "called_at": call.called_at, "recall": call.recall,
    })


def screen_changed(payload: dict[str, Any]) -> None:
    """Refresh notices and waiting counts after a pause, a resume or another routing change."""
    change = ScreenChanged.model_validate(payload)
    screen.publish(for_branch(change.branch), branches()[change.branch], notice=True)


def redraw_stale_screens(r: redis.Redis | None = None) -> int:
    """Redraw the waiting counts of every screen that got tickets since the last round; return how many."""
    r = r or get_redis()
    stale = r.spop(keys.screens_stale(), 10_000) or []
    for done, branch_id in enumerate(stale):
        branch = branches().get(branch_id)
        if branch is None:
            continue  # a branch no longer configured has no screen
        try:
            screen.publish(r, branch)
        except Exception:
            r.sadd(keys.screens_stale(), *stale[done:])  # the rest are redrawn next round
            raise
    return len(stale)
