"""Reading a consumer-group stream between services (services/domain/contracts.py, CHANNELS).

Every worker of the reading service runs one consumer of the channel's group on its Redis: `XREADGROUP ... BLOCK`,
so Redis wakes exactly one blocked worker per entry. A batch is handled, then acknowledged and deleted (XACK,
XDEL): what is left in the stream is what nobody has finished, so its length is the backlog.

A consumer that comes back reads its own pending entries first. What a consumer that died was holding is claimed
by a live one once it has been idle CLAIM_AFTER_S (XAUTOCLAIM), and a consumer idle for STALE_S with nothing
pending is removed from the group. Handling must be idempotent: an entry may be handled twice when a worker dies
after doing it and before acknowledging it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

from services.domain.contracts import Channel

log = logging.getLogger("lobby.consumer")
# Entries taken per read; a burst is handled in batches, one XACK each.
BATCH = 100
# How long a read blocks for new entries: also how soon a stop request is noticed.
BLOCK_MS = 1000
RECONNECT_FIRST_S, RECONNECT_MAX_S = 0.2, 3.0
# An entry a consumer has held this long without acknowledging it belongs to a consumer that died: take it over.
CLAIM_AFTER_S = 5.0
# A consumer that has taken nothing for this long, and holds nothing, is a worker gone (or one that idles: its
# next read adds it back).
STALE_S = 60.0
TIDY_EVERY_S = 5.0
# Redis's replies when the stream or the group is gone (deleted, or a fresh Redis): create them and read on.
GONE = ("NOGROUP", "UNBLOCKED")

Entry = tuple[str, dict[str, str]]
Handle = Callable[[redis.Redis, list[Entry], str], None]


def consumer_name(service: str) -> str:
    """Return this process's consumer name: one per worker process, kept across reconnections."""
    return f"{service}-{socket.gethostname()}-{os.getpid()}"


def ensure_group(r: redis.Redis, channel: Channel) -> None:
    """Create the stream and the group if missing, from the stream's start: nothing written before is skipped."""
    try:
        r.xgroup_create(channel.key, channel.group, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if not str(exc).startswith("BUSYGROUP"):
            raise


def read(r: redis.Redis, channel: Channel, consumer: str, *, block_ms: int | None = None,
         own: bool = False) -> list[Entry]:
    """Take the next entries for this consumer (own=True: those it took before and has not acknowledged)."""
    try:
        found = r.xreadgroup(channel.group, consumer, {channel.key: "0" if own else ">"}, count=BATCH,
                             block=block_ms)
    except redis.ResponseError as exc:
        if not str(exc).startswith(GONE):
            raise
        ensure_group(r, channel)
        return []
    return [(entry_id, fields or {}) for entry_id, fields in found[0][1]] if found else []


def done(r: redis.Redis, channel: Channel, entries: list[Entry]) -> None:
    """Acknowledge and delete handled entries, in one round trip."""
    if entries:
        ids = [entry_id for entry_id, _ in entries]
        pipe = r.pipeline(transaction=False)
        pipe.xack(channel.key, channel.group, *ids)
        pipe.xdel(channel.key, *ids)
        pipe.execute()


def claim(r: redis.Redis, channel: Channel, consumer: str) -> list[Entry]:
    """Take over the entries other consumers have held for CLAIM_AFTER_S without acknowledging them."""
    try:
        reply = r.xautoclaim(channel.key, channel.group, consumer, int(CLAIM_AFTER_S * 1000), count=BATCH)
    except redis.ResponseError as exc:
        if not str(exc).startswith(GONE):
            raise
        return []
    return [(entry_id, fields or {}) for entry_id, fields in reply[1] if fields is not None]


def tidy(r: redis.Redis, channel: Channel, consumer: str) -> list[str]:
    """Remove consumers that have taken nothing for STALE_S and hold nothing; return their names."""
    removed = []
    try:
        found: list[dict[str, Any]] = r.xinfo_consumers(channel.key, channel.group)
    except redis.ResponseError:
        return removed
    for c in found:
        if c["name"] == consumer or c["pending"] or c["idle"] < STALE_S * 1000:
            continue
        r.xgroup_delconsumer(channel.key, channel.group, c["name"])
        removed.append(c["name"])
    return removed


def drain(r: redis.Redis, channel: Channel, consumer: str, handle: Handle) -> int:
    """Handle every entry waiting in the channel (its own pending ones first), without blocking; return how many."""
    ensure_group(r, channel)
    handled, own = 0, True
    while True:
        entries = read(r, channel, consumer, own=own)
        if not entries:
            if not own:
                return handled
            own = False
            continue
        handle(r, entries, consumer)
        done(r, channel, entries)
        handled += len(entries)


def consume(channel: Channel, consumer: str, reader: Callable[[], redis.Redis], client: Callable[[], redis.Redis],
            handle: Handle, stop: threading.Event) -> None:
    """Handle a channel's entries as they come until stop is set; wait for Redis and read again when it goes away.

    `reader` gives the client whose socket waits longer than a blocking read, `client` the one for the rest.
    """
    delay_s = RECONNECT_FIRST_S
    log.info("consumer %s reading %s as group %s", consumer, channel.key, channel.group)
    while not stop.is_set():
        try:
            blocking, r = reader(), client()
            ensure_group(r, channel)
            own, tidied = True, 0.0
            while not stop.is_set():
                entries = read(blocking, channel, consumer, block_ms=None if own else BLOCK_MS, own=own)
                if own and not entries:
                    own = False  # what this consumer held before a lost connection is done: now new entries
                if time.monotonic() - tidied >= TIDY_EVERY_S:
                    entries += claim(r, channel, consumer)
                    tidy(r, channel, consumer)
                    tidied = time.monotonic()
                if entries:
                    handle(r, entries, consumer)
                    done(r, channel, entries)
                delay_s = RECONNECT_FIRST_S
        except Exception as exc:  # never die silently: a lost Redis or a bug, it is logged and read again
            if stop.is_set():
                break
            if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)):
                log.warning("consumer %s lost Redis (%s); reading again in %.1f s", consumer, exc, delay_s)
            else:
                log.exception("consumer %s failed; reading again in %.1f s", consumer, delay_s)
            stop.wait(delay_s)
            delay_s = min(delay_s * 2, RECONNECT_MAX_S)
    log.info("consumer %s stopped", consumer)


def backlog(r: redis.Redis, channel: Channel) -> dict[str, Any]:
    """Say how far a channel's readers are behind on one Redis: entries not finished (length), of which nobody has
    taken yet (lag) and taken but not finished (pending), and each consumer's pending entries and idle time."""
    found: dict[str, Any] = {"stream": channel.key, "group": channel.group, "length": 0, "lag": 0, "pending": 0,
                             "consumers": []}
    length = r.xlen(channel.key)
    found["length"] = found["lag"] = length
    try:
        groups = r.xinfo_groups(channel.key)
    except redis.ResponseError:  # no stream yet: nothing was ever sent here
        return found
    group = next((g for g in groups if _text(g["name"]) == channel.group), None)
    if group is None:  # no reader has started yet: every entry waits
        return found
    found["pending"] = int(group["pending"])
    found["lag"] = max(0, length - found["pending"])
    found["consumers"] = [{"name": _text(c["name"]), "pending": int(c["pending"]), "idle_s": round(c["idle"] / 1000, 1)}
                          for c in r.xinfo_consumers(channel.key, channel.group)]
    return found


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
