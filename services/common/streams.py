"""Live views: Redis streams served as Server-Sent Events with replay from Last-Event-ID.

Every event is one stream entry with two fields, `type` and `data` (one JSON object). Its SSE id
is the stream entry id, so a client that reconnects with Last-Event-ID (or ?since=) gets every
entry after it first, then the live ones. Pub/sub is never used: it forgets what nobody heard.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

import redis
from flask import Response, request

from services.common.config import Settings
from services.common.errors import BadRequest
from services.common.metrics import SSE_CLIENTS

KEEPALIVE_S = 10  # API.md: a comment at least every 15 s, so a silent stream stays well inside it
READ_BATCH = 200
STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
RETRY_MS = 2000


def append(r: redis.Redis | redis.client.Pipeline, stream_key: str, event: str, data: dict[str, Any],
           maxlen: int | None = None) -> Any:
    """Append one event to a stream, capped at about maxlen entries (LOBBY_STREAM_MAXLEN by default)."""
    return r.xadd(stream_key, {"type": event, "data": dumps(data)}, maxlen=maxlen or stream_maxlen(),
                  approximate=True)


@lru_cache(maxsize=1)
def stream_maxlen() -> int:
    return Settings.from_env().stream_maxlen


def dumps(data: dict[str, Any]) -> str:
    # json.dumps escapes control characters, so a value with newlines can never split an SSE frame.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def frame(event_id: str, event: str, data: str) -> str:
    return f"id: {event_id}\nevent: {event}\ndata: {data}\n\n"


def last_id(r: redis.Redis, stream_key: str) -> str:
    """Return the id of the newest entry, or 0-0 for an empty stream."""
    newest = r.xrevrange(stream_key, count=1)
    return newest[0][0] if newest else "0-0"


def requested_cursor() -> str | None:
    """Return the id the client has seen, from Last-Event-ID or ?since=, validated."""
    cursor = request.headers.get("Last-Event-ID") or request.args.get("since")
    if cursor is None or cursor == "":
        return None
    if not STREAM_ID.match(cursor):
        raise BadRequest("Last-Event-ID and since must be a stream id such as 1700000000000-0",
                         code="bad_event_id")
    return cursor


def audience(stream_key: str) -> str:
    """Name who follows a stream, for metrics: screen, device or terminal."""
    name = stream_key.rsplit(":stream:", 1)[-1]
    return "terminal" if name.startswith("counter:") else name


def sse_response(
    r: redis.Redis,
    stream_key: str,
    *,
    snapshot: Callable[[], tuple[str, dict[str, Any]]] | None = None,
    accept: Callable[[str, dict[str, Any]], bool] | None = None,
) -> Response:
    """Serve a stream as SSE from the client's cursor, or from now with an optional snapshot first."""
    cursor = requested_cursor()

    def events() -> Iterator[str]:
        clients = SSE_CLIENTS.labels(audience(stream_key))
        clients.inc()
        try:
            yield from follow()
        finally:  # the client went away (the server closes the generator) or the stream failed
            clients.dec()

    def follow() -> Iterator[str]:
        position = cursor
        yield f"retry: {RETRY_MS}\n\n"
        if position is None:
            # Read the cursor before the snapshot: whatever happens after it is replayed, nothing is lost.
            position = last_id(r, stream_key)
            if snapshot is not None:
                event, data = snapshot()
                yield frame(position, event, dumps(data))
        while True:
            batch = r.xread({stream_key: position}, count=READ_BATCH, block=KEEPALIVE_S * 1000)
            if not batch:
                yield ": keepalive\n\n"
                continue
            for entry_id, fields in batch[0][1]:
                position = entry_id
                event, data = fields.get("type", "message"), fields.get("data", "{}")
                if accept is None or accept(event, json.loads(data)):
                    yield frame(entry_id, event, data)

    return Response(
        events(),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
