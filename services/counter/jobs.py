"""Jobs the counter worker runs (queue `counter`): bring page news to the terminal."""

from __future__ import annotations

from typing import Any

from services.common.contracts import PageEvent
from services.common.redis import for_branch
from services.counter import alerts


def page_event(payload: dict[str, Any]) -> None:
    """Record what became of an alert's page and tell the counter's terminal."""
    event = PageEvent.model_validate(payload)
    alerts.apply_page_event(for_branch(event.branch), event)
