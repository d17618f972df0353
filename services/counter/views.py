"""The counter service's pages: the teller's terminal, and the waiting counts it shows."""

from __future__ import annotations

import json
from typing import Any

import redis
from flask import Response

from services.domain import contracts, keys
from services.domain.errors import NotFound
from services.web import sse
from services.web.app import live_streams
from services.web.views import known_branch, page_blueprint, render_page

bp = page_blueprint("counter", __name__)
WAITING = "waiting"
# How far back the newest waiting counts are looked for in the screen stream: every change the screen
# hears appends one, so it is always among the last few entries.
LOOK_BACK = 200


@bp.get("/branches/<branch>/counters/<counter>/terminal")
def terminal(branch: str, counter: str) -> Response:
    """The teller's terminal; its token comes once in the address (?token=) and the page keeps it."""
    b = known_branch(branch)
    c = b.counter(counter)
    if c is None:
        raise NotFound(f"unknown counter {counter!r}", code="unknown_counter")
    window = f"{c.window} 号窗口" if c.window.isdigit() else f"{c.window} 窗口"
    return render_page("terminal.html", b, title=f"{window} · {b.name}", page="terminal",
                       data={"counter": {"id": c.id, "window": c.window, "serves": list(c.serves)},
                             "phone": b.managers[0].phone,  # the lobby manager's, for a call no device got
                             **contracts.vocabulary()},
                       counter=c, window_label=window)


@bp.get("/branches/<branch>/counters/<counter>/terminal/waiting")
def waiting_events(branch: str, counter: str) -> Response:
    """Follow the waiting counts of the branch's lines (the public screen's `waiting` events) as SSE."""
    b = known_branch(branch)
    if b.counter(counter) is None:
        raise NotFound(f"unknown counter {counter!r}", code="unknown_counter")
    streams = live_streams()
    key = keys.stream(b.id, keys.SCREEN)
    response = sse.sse_response(streams, key, snapshot=lambda: (WAITING, latest_waiting(streams.redis, key)),
                                accept=lambda event, data: event == WAITING)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def latest_waiting(r: redis.Redis, stream_key: str) -> dict[str, Any]:
    """Return the newest waiting counts the screen stream carries ({"waiting": {}} when it has none)."""
    for _entry_id, fields in r.xrevrange(stream_key, count=LOOK_BACK):
        if fields.get("type") == WAITING:
            return json.loads(fields.get("data") or "{}")
    return {"waiting": {}}
