"""Live views: Redis streams served as Server-Sent Events with replay from Last-Event-ID.

Every event is one stream entry with two fields, `type` and `data` (one JSON object). Its SSE id
is the stream entry id, so a client that reconnects with Last-Event-ID (or ?since=) gets every
entry after it first, then the live ones. Pub/sub is never used: it forgets what nobody heard. The process's
hub (services/web/hub.py) reads each stream once for all the clients that follow it.

Two events come from here, not from a stream entry. `reset`: the client's cursor is older than the
oldest entry the stream still keeps, so what it missed cannot be replayed (reason `trimmed`), or newer
than its newest, an entry it never had (`ahead`); it reloads its view and the stream goes on from its
newest entry (after a fresh snapshot where the stream has one).
`revoked`: the token the stream was opened with was revoked; it is the last event.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import redis
from flask import Response, request

from services.domain import presence
from services.domain.branch import Branch
from services.domain.clock import SYSTEM
from services.domain.errors import BadRequest
from services.domain.feeds import dumps
from services.web import hub as hubs
from services.web.hub import Hub, seq

KEEPALIVE_S = 10  # API.md: a comment at least every 15 s, so a silent stream stays well inside it
STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
MAX_ID_PART = 2**64 - 1  # each part of a Redis stream id is an unsigned 64-bit number
RETRY_MS = 2000
RESET, REVOKED = "reset", "revoked"
log = logging.getLogger("lobby.streams")


def frame(event_id: str, event: str, data: str) -> str:
    return f"id: {event_id}\nevent: {event}\ndata: {data}\n\n"


def revoked(event_id: str) -> str:
    """Return the last frame of a stream whose token was revoked."""
    return frame(event_id, REVOKED, dumps({"reason": "token_revoked"}))


def last_id(r: redis.Redis, stream_key: str) -> str:
    """Return the id of the newest entry, or 0-0 for an empty stream."""
    newest = r.xrevrange(stream_key, count=1)
    return newest[0][0] if newest else "0-0"


def ends(r: redis.Redis, stream_key: str) -> tuple[str | None, str]:
    """Return the ids of the oldest entry the stream keeps (None for an empty stream) and of its newest (0-0)."""
    pipe = r.pipeline(transaction=False)
    pipe.xrange(stream_key, count=1)
    pipe.xrevrange(stream_key, count=1)
    oldest, newest = pipe.execute()
    return (oldest[0][0] if oldest else None), (newest[0][0] if newest else "0-0")


def requested_cursor() -> str | None:
    """Return the id the client has seen, from Last-Event-ID or ?since=, validated as a Redis stream id."""
    cursor = request.headers.get("Last-Event-ID") or request.args.get("since")
    if cursor is None or cursor == "":
        return None
    parts = STREAM_ID.fullmatch(cursor)
    if parts is None or any(int(part) > MAX_ID_PART for part in parts.groups()):
        raise BadRequest("Last-Event-ID and since must be a stream id such as 1700000000000-0",
                         code="bad_event_id")
    return cursor


def audience(stream_key: str) -> str:
    """Name who follows a stream, for what a process says it holds: screen, device or terminal."""
    name = stream_key.rsplit(":stream:", 1)[-1]
    return "terminal" if name.startswith("counter:") else name


def sse_response(
    hub: Hub,
    stream_key: str,
    *,
    snapshot: Callable[[], tuple[str, dict[str, Any]]] | None = None,
    accept: Callable[[str, dict[str, Any]], bool] | None = None,
    token_key: str | None = None,
    endpoint: tuple[Branch, str] | None = None,
) -> Response:
    """Serve a stream as SSE from the client's cursor, or from now with an optional snapshot first.

    The process's hub (services/web/hub.py) reads the stream for every client that follows it. With token_key
    (the Redis key of the token the stream was opened with), the stream ends with a `revoked` event when that
    token is revoked, before any event written after it. With endpoint (a branch and an endpoint of
    services/domain/presence.py), the stream says the endpoint is connected while it is open, and when it ended.
    """
    cursor = requested_cursor()
    r = hub.redis

    def follow() -> Iterator[str]:
        position = cursor
        yield f"retry: {RETRY_MS}\n\n"
        reason = None
        if cursor is not None:
            oldest, newest = ends(r, stream_key)
            if oldest is not None and seq(oldest) > seq(cursor):
                reason = {"reason": "trimmed", "oldest": oldest}  # what it missed cannot all be replayed
            elif seq(cursor) > seq(newest):
                # The client claims an entry the stream never had (it was lost, or the cursor is made up): it is
                # told to reload, and followed from the newest entry, never from beyond it.
                reason = {"reason": "ahead", "newest": newest}
        if position is None or reason is not None:
            # Read the cursor before the snapshot: whatever happens after it is replayed, nothing is lost.
            position = last_id(r, stream_key) if cursor is None else newest
            if reason is not None:
                yield frame(position, RESET, dumps(reason))
            if snapshot is not None:
                event, data = snapshot()
                yield frame(position, event, dumps(data))
        follower = hub.follow({stream_key: position}, token_key, audience(stream_key))
        try:
            while True:
                entries = follower.receive(r, KEEPALIVE_S)
                for entry in entries:
                    if accept is None or accept(entry.type, json.loads(entry.data)):
                        yield frame(entry.id, entry.type, entry.data)
                if follower.ended == hubs.REVOKED:
                    yield revoked(follower.positions[stream_key])
                    return
                if follower.ended is not None:
                    log.info("stream %s ended: %s", stream_key, follower.ended)
                    return
                if not entries:
                    yield ": keepalive\n\n"
        finally:
            hub.leave(follower)

    return _served(r, follow, stream_key, endpoint)


def views_response(
    hub: Hub,
    stream_keys: list[str],
    event: str,
    view: Callable[[], dict[str, Any]],
    *,
    token_key: str | None = None,
    refresh_s: float = 5.0,
) -> Response:
    """Serve a view that is read whole (the floor) as SSE: `event` with the whole view at once, then again each
    time it changed, looked at when any of these streams gets an entry and every refresh_s besides (for what
    changes with time alone). There is nothing to replay: a reconnection gets the view as it is then.

    With token_key, the stream ends with `revoked` when that token is revoked, as sse_response's do.
    """
    r = hub.redis

    def follow() -> Iterator[str]:
        yield f"retry: {RETRY_MS}\n\n"
        # Joined before the first look: whatever changes after it wakes the next one.
        follower = hub.follow({key: last_id(r, key) for key in stream_keys}, token_key, event)
        try:
            shown, quiet_since = None, SYSTEM.now_ms()
            while True:
                if follower.ended == hubs.REVOKED:
                    yield revoked(f"{SYSTEM.now_ms()}-0")
                    return
                if follower.ended is not None:
                    return
                data = dumps(view())
                now_ms = SYSTEM.now_ms()
                if data != shown:
                    shown, quiet_since = data, now_ms
                    yield frame(f"{now_ms}-0", event, data)
                elif now_ms - quiet_since >= KEEPALIVE_S * 1000:
                    quiet_since = now_ms
                    yield ": keepalive\n\n"
                follower.receive(r, refresh_s)
        finally:
            hub.leave(follower)

    return _served(r, follow, event)


def _served(r: redis.Redis, follow: Callable[[], Iterator[str]], name: str,
            endpoint: tuple[Branch, str] | None = None) -> Response:
    """Serve SSE frames; with endpoint, the endpoint is present while they flow.

    A Redis failure ends the response as a finished one, so the client reconnects after RETRY_MS from its last id.
    """
    connection = secrets.token_hex(8)

    def events() -> Iterator[str]:
        try:
            if endpoint is not None:
                presence.opened(r, *endpoint, connection, SYSTEM.now_ms())
            yield from follow()
        except redis.RedisError as exc:
            log.warning("stream %s ended: redis failed: %s", name, exc)
        except Exception:
            log.exception("stream %s ended: it failed", name)
        finally:  # the client went away (the server closes the generator) or the stream ended
            if endpoint is not None:
                with contextlib.suppress(redis.RedisError):
                    presence.closed(r, endpoint[0].id, endpoint[1], connection, SYSTEM.now_ms())

    return Response(events(), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


CONTROL_EVENTS = (
    " Besides these: `reset` (its id is the stream's newest) when Last-Event-ID or since is older than the"
    " oldest event the stream still keeps (reason `trimmed`) or newer than its newest (`ahead`); reload the view,"
    " the stream goes on from there."
)
REVOKED_EVENT = " `revoked` when the token is revoked; it is the last event, the stream ends."


def document_control_events(spec: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of an OpenAPI document whose event streams also name `reset` and, with a token, `revoked`."""
    spec = copy.deepcopy(spec)
    for item in spec.get("paths", {}).values():
        get = item.get("get") or {}
        answer = get.get("responses", {}).get("200", {})
        if "text/event-stream" not in answer.get("content", {}):
            continue
        note = CONTROL_EVENTS + (REVOKED_EVENT if get.get("security") else "")
        answer["description"] = answer.get("description", "") + "." + note
    return spec
