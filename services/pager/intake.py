"""The pager workers' intake: page requests handed over by the page-request stream of their Redis.

A counter writes an alert, its PageRequest in the branch's outbox, and an entry naming it (branch id, alert
id) in `keys.page_requests()`, in one MULTI (services/counter/alerts.py). Every pager worker runs one consumer
thread of the group `pager` on that stream: `XREADGROUP ... BLOCK`, so Redis wakes exactly one blocked worker
per entry, which reads the request from the outbox and delivers it (`jobs.deliver`, idempotent by alert id).
That is two round trips from the counter's write to the page's MULTI, where an RQ job per page cost its
enqueue in the teller's request, a dequeue and RQ's bookkeeping (BENCHMARKS.md, B1).

Entries are acknowledged (XACK, once per batch, after its pages are out), so a group's pending entries are the
ones some worker holds right now: `lobby status` and /metrics show a consumer that holds entries and does not
finish them. Recovery does not depend on that list: the outbox is the durable record and the sweeper
(`jobs.sweep_outbox`) delivers whatever stays in it past the grace time, whether its entry was lost with a
killed worker, trimmed, or never read. A consumer that comes back reads its own pending entries first; a
consumer idle for longer than STALE_S (a worker that died) is removed from the group with its pending list.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

import redis

from services.common import keys, logs
from services.common.config import branches_on, settings
from services.common.contracts import PAGE_REQUESTS_GROUP, PageRequest
from services.common.redis import get_redis, get_stream_redis
from services.pager.jobs import deliver

log = logging.getLogger("lobby.pager")
GROUP = PAGE_REQUESTS_GROUP
# Entries taken per read; a burst is delivered in batches, one XACK each.
BATCH = 100
# How long a read blocks for new entries: also how soon a stop request is noticed.
BLOCK_MS = 1000
RECONNECT_FIRST_S, RECONNECT_MAX_S = 0.2, 3.0
# A consumer that has taken no entry for this long is a worker that died (or one that idles: it is added back
# by its next read). Removing it drops its pending entries, whose alerts the sweeper delivered long before.
STALE_S = 60.0
TIDY_EVERY_S = 30.0
# Redis's replies when the stream or the group is gone (deleted, or a fresh Redis): create them and read on.
GONE = ("NOGROUP", "UNBLOCKED")

Entry = tuple[str, dict[str, str]]


def consumer_name() -> str:
    """Return this process's consumer name: one per worker process, kept across reconnections."""
    return f"pager-{socket.gethostname()}-{os.getpid()}"


def ensure_group(r: redis.Redis) -> None:
    """Create the stream and the group if missing, from the stream's start: nothing written before is skipped."""
    try:
        r.xgroup_create(keys.page_requests(), GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if not str(exc).startswith("BUSYGROUP"):
            raise


def read(r: redis.Redis, consumer: str, *, block_ms: int | None = None, own: bool = False) -> list[Entry]:
    """Take the next entries for this consumer (own=True: those it took before and has not acknowledged)."""
    try:
        found = r.xreadgroup(GROUP, consumer, {keys.page_requests(): "0" if own else ">"}, count=BATCH,
                             block=block_ms)
    except redis.ResponseError as exc:
        if not str(exc).startswith(GONE):
            raise
        ensure_group(r)
        return []
    return [(entry_id, fields or {}) for entry_id, fields in found[0][1]] if found else []


def handle(r: redis.Redis, entries: list[Entry], mine: set[str], consumer: str) -> int:
    """Deliver the page requests these entries name, then acknowledge them; return how many pages were written."""
    delivered = 0
    for entry_id, fields in entries:
        branch_id, alert_id = fields.get("branch"), fields.get("alert")
        token = logs.job_context(f"page-request-{entry_id}", branch_id, consumer=consumer)
        try:
            if not branch_id or not alert_id:
                continue  # trimmed from the stream while we held it: the sweeper has its alert
            if branch_id not in mine:
                # Not a branch of this worker's Redis (a config this worker has not loaded yet): leave its request
                # in the outbox, for the sweeper of a worker that knows the branch.
                log.warning("page request for alert %s of branch %s, which this worker does not serve; left in "
                            "the outbox", alert_id, branch_id)
                continue
            raw = r.hget(keys.outbox(branch_id), alert_id)
            if raw is None:
                continue  # delivered already (by the sweeper, or before this worker lost Redis)
            deliver(r, PageRequest.model_validate_json(raw))
            delivered += 1
        except (redis.ConnectionError, redis.TimeoutError):
            raise  # the entries stay pending; this consumer reads them again when Redis is back
        except Exception:
            log.exception("could not deliver alert %s of %s; the sweeper delivers it from the outbox",
                          alert_id, branch_id)
        finally:
            logs.CONTEXT.reset(token)
    if entries:
        r.xack(keys.page_requests(), GROUP, *(entry_id for entry_id, _ in entries))
    return delivered


def drain(r: redis.Redis | None = None, consumer: str | None = None) -> int:
    """Deliver every page request waiting in the stream, without blocking; return how many pages were written."""
    r = r or get_redis()
    consumer = consumer or consumer_name()
    mine = {b.id for b in branches_on(settings().redis_url)}
    ensure_group(r)
    delivered, own = 0, True
    while True:
        entries = read(r, consumer, own=own)
        if not entries:
            if not own:
                return delivered
            own = False
            continue
        delivered += handle(r, entries, mine, consumer)


def tidy(r: redis.Redis, consumer: str) -> list[str]:
    """Remove consumers that have taken nothing for STALE_S (workers that died); return their names."""
    removed = []
    try:
        found: list[dict[str, Any]] = r.xinfo_consumers(keys.page_requests(), GROUP)
    except redis.ResponseError:
        return removed
    for c in found:
        if c["name"] == consumer or c["idle"] < STALE_S * 1000:
            continue
        r.xgroup_delconsumer(keys.page_requests(), GROUP, c["name"])
        removed.append(c["name"])
        log.log(logging.WARNING if c["pending"] else logging.DEBUG,
                "removed page-request consumer %s, idle %.0f s with %d entries pending (their alerts were swept)",
                c["name"], c["idle"] / 1000, c["pending"])
    return removed


def consume(stop: threading.Event) -> None:
    """Deliver page requests as they come until stop is set; wait for Redis and read again when it goes away."""
    name = consumer_name()
    url = settings().redis_url
    mine = {b.id for b in branches_on(url)}
    delay_s = RECONNECT_FIRST_S
    log.info("page-request consumer %s reading %s for %d branch(es)", name, keys.page_requests(), len(mine))
    while not stop.is_set():
        try:
            # The blocking read has a client whose socket waits longer than BLOCK_MS; the rest fail fast.
            reader, r = get_stream_redis(url), get_redis(url)
            ensure_group(r)
            own, tidied = True, 0.0
            while not stop.is_set():
                entries = read(reader, name, block_ms=None if own else BLOCK_MS, own=own)
                if own and not entries:
                    own = False  # what this consumer held before a lost connection is done: now new entries
                handle(r, entries, mine, name)
                delay_s = RECONNECT_FIRST_S
                if time.monotonic() - tidied >= TIDY_EVERY_S:
                    tidy(r, name)
                    tidied = time.monotonic()
        except Exception as exc:  # never die silently: a lost Redis or a bug, it is logged and read again
            if stop.is_set():
                break
            if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)):
                log.warning("page-request consumer %s lost Redis (%s); reading again in %.1f s", name, exc, delay_s)
            else:
                log.exception("page-request consumer %s failed; reading again in %.1f s", name, delay_s)
            stop.wait(delay_s)
            delay_s = min(delay_s * 2, RECONNECT_MAX_S)
    log.info("page-request consumer %s stopped", name)
