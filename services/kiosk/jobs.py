"""Jobs the kiosk worker runs (queue `kiosk`): keep the lobby screen's stream current."""

from __future__ import annotations

from typing import Any

from services.common.config import branches
from services.common.contracts import ScreenChanged, TicketCalled
from services.common.redis import for_branch
from services.kiosk import screen


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
