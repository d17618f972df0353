"""The lobby screen: its snapshot, and the events its stream carries.

The public screen shows tickets, calls, waiting counts and redirect notices; nothing about
distress, help or supervisor calls ever reaches it.
"""

from __future__ import annotations

from typing import Any

import redis

from services.domain import feeds, keys
from services.domain.branch import Branch
from services.domain.schemas import Notice, NowServing, Screen, Waiting
from services.domain.tickets import TicketReader

NOW_SERVING = 6
TICKET_CALLED, WAITING, NOTICE, SCREEN = "ticket_called", "waiting", "notice", "screen"


def waiting(reader: TicketReader) -> dict[str, Waiting]:
    """Per category: how many wait, and how long a ticket taken now would wait."""
    heads = reader.lines.category_heads([c.id for c in reader.branch.categories])
    return {
        cat: Waiting(count=head.count, estimated_wait_s=reader.estimate(cat, head.count + 1))
        for cat, head in heads.items()
    }


def notices(reader: TicketReader) -> list[Notice]:
    return [
        Notice(kind="vip_redirect", window=reader.window_of(reader.targets.get(cat)), category=cat,
               tickets=reader.lines.waiting(cat), reason=rule.reason)
        for cat, rule in sorted(reader.rules.items())
    ]


def snapshot(r: redis.Redis, branch: Branch) -> Screen:
    reader = TicketReader(r, branch)
    return Screen(
        branch=branch.id,
        now_serving=[NowServing(**call) for call in reader.lines.recent_calls(NOW_SERVING)],
        waiting=waiting(reader),
        notices=notices(reader),
    )


def publish(r: redis.Redis, branch: Branch, *, called: dict[str, Any] | None = None,
            notice: bool = False) -> None:
    """Append what changed to the screen stream: the call, waiting counts, notices when asked or in force."""
    reader = TicketReader(r, branch)
    current = notices(reader)
    pipe = r.pipeline(transaction=False)
    if called is not None:
        feeds.append(pipe, branch, keys.SCREEN, TICKET_CALLED, called)
    feeds.append(pipe, branch, keys.SCREEN, WAITING, {"waiting": _dump(waiting(reader))})
    if notice or current:
        feeds.append(pipe, branch, keys.SCREEN, NOTICE, {"notices": [n.model_dump() for n in current]})
    pipe.execute()


def _dump(items: dict[str, Waiting]) -> dict[str, Any]:
    return {k: v.model_dump() for k, v in items.items()}
