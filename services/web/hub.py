"""The fan-out of live streams in one web process: each stream is read once, whoever many clients follow it.

A `Hub` serves one Redis. Its readers each follow up to STREAMS_PER_READER streams in one blocking XREAD on a
connection of their own, and hand every entry to the clients following its stream (a `Follower` each). So a
process holds a few Redis connections however many screens, terminals and devices listen: its readers, one
for each STREAMS_PER_READER streams followed, and its pool for everything else.

How a client joins without a gap or a duplicate. The hub keeps, for each stream, the id of the newest entry it
has handed out (`position`). A client joins with its cursor (the last id it has seen, or the stream's newest
when it starts afresh) in one step under the hub's lock:
- a stream nobody follows yet starts at the client's cursor: the reader reads on from there, so the client
  needs no replay of its own;
- a stream already followed is at the hub's position; the client replays (cursor, position] itself from Redis,
  and every entry after the position reaches its buffer from the reader, since it joined before the reader read
  it. Entries at or before the last one it sent are skipped, so none is sent twice.

A slow client never holds up the others: its buffer takes at most BUFFER entries; past that it is cut off, and
it reconnects from its last id and loses nothing (the stream still has it).

Revocation travels in order with the events. `auth.revoke` deletes the token and appends its id to
`keys.REVOCATIONS` in one transaction; every reader reads that stream in the same XREAD as its others, and
handles the revocations of a batch before its events. An event written after the revocation is read with it or
after it, so it is never sent to the revoked client. The hub also checks a client's token once it has joined (a
revocation before that is not read for it), and the hub checks every client's token once every CHECK_S.

The hub uses `threading`: under gunicorn's gevent worker (services/web/serving.py) those are greenlets.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import redis

from services.domain import keys
from services.domain.feeds import dumps
from services.runtime import redis as clients

log = logging.getLogger("lobby.streams")

# Entries a client may fall behind before it is cut off (it reconnects from its last id and loses nothing).
BUFFER = 1000
# Streams one reader follows in one XREAD: each wake-up costs Redis and the reader work in proportion to it.
STREAMS_PER_READER = 250
READ_BATCH = 200
# How long a reader's XREAD waits when nothing comes (its socket waits longer: runtime/redis.py STREAM_TIMEOUT_S).
BLOCK_MS = 10_000
# How often the hub checks every client's token and says what it holds (`keys.WEB_PROCESSES`), and how soon
# after clients came or went it says so.
CHECK_S = 10.0
REPORT_S = 1.0
# What a process said it holds counts this long; a process that said nothing since is gone.
STALE_S = 3 * CHECK_S
# After a Redis failure, a reader waits this long before reading again.
RETRY_S = 1.0
# Why a client's stream ends.
REVOKED, OVERFLOW, FAILED = "revoked", "overflow", "failed"


def seq(entry_id: str) -> tuple[int, int]:
    """Return a stream id as numbers, for comparing ("10-0" comes after "9-5")."""
    ms, _, n = entry_id.partition("-")
    return int(ms), int(n or 0)


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry, as a client is sent it."""

    stream: str
    id: str
    type: str
    data: str


@dataclass(eq=False)
class Follower:
    """One client of the hub: the streams it follows, where it is in each, its buffer, and why it ended."""

    token_key: str | None
    audience: str = "other"  # who follows (screen, terminal, device, floor), for what the process says it holds
    # The id of the last entry the client was given (or its cursor), by stream.
    positions: dict[str, str] = field(default_factory=dict)
    # What the client replays from Redis itself before its buffer, by stream: up to which id.
    replay: dict[str, str] = field(default_factory=dict)
    streams: list[Stream] = field(default_factory=list)
    buffer: collections.deque[Entry] = field(default_factory=collections.deque)
    ended: str | None = None
    ready: threading.Event = field(default_factory=threading.Event)

    def push(self, entry: Entry) -> bool:
        """Buffer an entry for the client; cut the client off (and say so) once its buffer is full."""
        if self.ended is not None:
            return False
        if len(self.buffer) >= BUFFER:
            self.end(OVERFLOW)
            return False
        self.buffer.append(entry)
        self.ready.set()
        return True

    def end(self, reason: str) -> None:
        if self.ended is None:
            self.ended = reason
        if reason == OVERFLOW:
            self.buffer.clear()
        self.ready.set()

    def receive(self, r: redis.Redis, timeout_s: float) -> list[Entry]:
        """Return the client's next entries, each once and in order: its replay from Redis first, then what the
        reader buffered, waiting up to timeout_s for something (an entry, or the end)."""
        if self.replay:
            key, upto = next(iter(self.replay.items()))
            batch = r.xrange(key, min=f"({self.positions[key]}", max=upto, count=READ_BATCH)
            if len(batch) < READ_BATCH or batch[-1][0] == upto:
                del self.replay[key]
            return self._unseen(Entry(key, entry_id, fields.get("type", "message"), fields.get("data", "{}"))
                                for entry_id, fields in batch)
        self.ready.wait(timeout_s)
        self.ready.clear()
        taken = []
        while self.buffer:
            taken.append(self.buffer.popleft())
        return self._unseen(taken)

    def _unseen(self, entries: Iterable[Entry]) -> list[Entry]:
        """Keep the entries after the client's position in their stream, and move it on."""
        fresh = []
        for entry in entries:
            if seq(entry.id) > seq(self.positions[entry.stream]):
                self.positions[entry.stream] = entry.id
                fresh.append(entry)
        return fresh


@dataclass(eq=False)
class Stream:
    key: str
    position: str
    reader: Reader
    followers: set[Follower] = field(default_factory=set)


class Reader:
    """One connection's blocking XREAD over up to STREAMS_PER_READER streams, and the revocations."""

    def __init__(self, hub: Hub, revocations_from: str):
        self.hub = hub
        self.streams: dict[str, Stream] = {}
        self.revocations = revocations_from
        # Appending to this key wakes the reader's XREAD so it takes in a stream just followed.
        self.wake_key = f"{keys.HUB_WAKE}{secrets.token_hex(8)}"
        self.wake_position = "0-0"
        self.woken = False  # a wake is on its way, not yet taken in
        self.blocked = False  # reading with a set of streams that may miss one just added
        self.thread = threading.Thread(target=self.run, name=f"hub-reader-{self.wake_key[-6:]}", daemon=True)

    def needs_waking(self) -> bool:
        """Say whether the reader must be woken to take in a stream just added (under the hub's lock): it is
        reading a set without it, and no wake is on its way yet."""
        if self.blocked and not self.woken:
            self.woken = True
            return True
        return False

    def run(self) -> None:
        connection = self.hub.connect()
        while not self.hub.closed:
            with self.hub.lock:
                for key in [k for k, s in self.streams.items() if not s.followers]:
                    del self.streams[key]
                    del self.hub.streams[key]
                positions = {key: s.position for key, s in self.streams.items()}
                positions[keys.REVOCATIONS] = self.revocations
                positions[self.wake_key] = self.wake_position
                self.blocked, self.woken = True, False
            try:
                reply = connection.xread(positions, count=READ_BATCH, block=BLOCK_MS)
            except redis.ResponseError as exc:  # a key that is no stream (WRONGTYPE): end its clients alone
                self.blocked = False
                self.fail(self.not_streams(list(positions), exc))
                continue
            except redis.RedisError as exc:
                self.blocked = False
                log.warning("hub reader: redis failed: %s", exc)
                self.fail()
                time.sleep(RETRY_S)
                continue
            self.blocked = False
            self.dispatch(reply or [])
        with contextlib.suppress(redis.RedisError):
            connection.close()

    def dispatch(self, reply: list) -> None:
        """Hand a batch to the followers: revocations first, then each stream's entries in order."""
        by_key = dict(reply)
        with self.hub.lock:
            for entry_id, fields in by_key.pop(keys.REVOCATIONS, []):
                self.revocations = entry_id
                self.hub.revoke(fields.get("token_key", ""))
            for entry_id, _fields in by_key.pop(self.wake_key, []):
                self.wake_position = entry_id
            for key, entries in by_key.items():
                stream = self.streams.get(key)
                if stream is None:
                    continue
                for entry_id, fields in entries:
                    stream.position = entry_id
                    entry = Entry(key, entry_id, fields.get("type", "message"), fields.get("data", "{}"))
                    for follower in list(stream.followers):
                        if not follower.push(entry):
                            self.hub.drop(follower)
                self.hub.delivered += len(entries)

    def not_streams(self, names: list[str], exc: redis.ResponseError) -> list[str] | None:
        """Return which of these keys hold something other than a stream (None: say every one, to be safe)."""
        try:
            pipe = self.hub.redis.pipeline(transaction=False)
            for name in names:
                pipe.type(name)
            wrong = [n for n, kind in zip(names, pipe.execute(), strict=True) if kind not in ("stream", "none")]
        except redis.RedisError:
            wrong = []
        for name in wrong:
            log.warning("stream %s ended: redis failed: %s", name, exc)
        if not wrong:
            log.warning("hub reader: redis failed: %s", exc)
            time.sleep(RETRY_S)
        return wrong or None

    def fail(self, keys_: list[str] | None = None) -> None:
        """End the clients of these streams (default: all of this reader's), who reconnect from their last id,
        and forget the streams."""
        with self.hub.lock:
            for stream in [s for k, s in self.streams.items() if keys_ is None or k in keys_]:
                for follower in list(stream.followers):
                    follower.end(FAILED)
                    self.hub.drop(follower)


class Hub:
    """The readers of one Redis in this process, and the clients they serve."""

    def __init__(self, plain: redis.Redis, connect: Callable[[], redis.Redis], process: str):
        self.redis = plain
        self.connect = connect
        self.process = process
        self.lock = threading.Lock()
        self.streams: dict[str, Stream] = {}
        self.readers: list[Reader] = []
        self.followers: set[Follower] = set()
        self.delivered = 0
        self.changed = False  # clients came or went since the hub last said what it holds
        self.closed = False
        self.revocations: str | None = None  # the newest revocation when the hub started
        self.checker: threading.Thread | None = None

    def follow(self, cursors: dict[str, str], token_key: str | None = None, audience: str = "other") -> Follower:
        """Join a client to these streams from its cursors (the last id it has of each): it receives every entry
        after them, each once and in order."""
        self._start()
        follower = Follower(token_key, audience, positions=dict(cursors))
        with self.lock:
            self.followers.add(follower)
            self.changed = True
            wake = set()
            for key, cursor in cursors.items():
                stream = self.streams.get(key)
                if stream is None:
                    reader = self._reader_with_room()
                    stream = self.streams[key] = reader.streams[key] = Stream(key, cursor, reader)
                    wake.add(reader)
                elif seq(stream.position) > seq(cursor):
                    follower.replay[key] = stream.position
                stream.followers.add(follower)
                follower.streams.append(stream)
            waking = [reader for reader in wake if reader.needs_waking()]
        if waking:
            self._wake(waking)
        # Joined: a revocation from now on reaches the follower through its reader; one before is seen here, and
        # the follower is sent nothing, its replay included.
        if token_key is not None and not self.redis.exists(token_key):
            follower.replay.clear()
            self.leave(follower)
            follower.end(REVOKED)
        return follower

    def _wake(self, readers: list[Reader]) -> None:
        """Append to each reader's wake key: its XREAD returns at once and reads again with every stream."""
        pipe = self.redis.pipeline(transaction=False)
        for reader in readers:
            pipe.xadd(reader.wake_key, {"w": "1"}, maxlen=1, approximate=False)
            pipe.pexpire(reader.wake_key, BLOCK_MS * 3)
        try:
            pipe.execute()
        except redis.RedisError as exc:  # each reader takes the stream in when its XREAD times out
            log.warning("hub: could not wake its readers: %s", exc)
            for reader in readers:
                reader.woken = False

    def leave(self, follower: Follower) -> None:
        with self.lock:
            self.drop(follower)

    def drop(self, follower: Follower) -> None:
        """Forget a client (under the lock); its streams go with the reader's next read if nobody else follows."""
        self.followers.discard(follower)
        self.changed = True
        for stream in follower.streams:
            stream.followers.discard(follower)

    def revoke(self, token_key: str) -> None:
        """End the clients that follow with this token (under the lock)."""
        for follower in [f for f in self.followers if f.token_key == token_key]:
            follower.end(REVOKED)
            self.drop(follower)

    def close(self) -> None:
        self.closed = True

    def _reader_with_room(self) -> Reader:
        reader = min(self.readers, key=lambda r: len(r.streams), default=None)
        if reader is None or len(reader.streams) >= STREAMS_PER_READER:
            assert self.revocations is not None
            reader = Reader(self, self.revocations)
            self.readers.append(reader)
            reader.thread.start()
        return reader

    def _start(self) -> None:
        if self.revocations is not None:
            return
        newest = self.redis.xrevrange(keys.REVOCATIONS, count=1)
        with self.lock:
            if self.revocations is None:
                self.revocations = newest[0][0] if newest else "0-0"
                self.checker = threading.Thread(target=self._check, name="hub-checker", daemon=True)
                self.checker.start()
        with contextlib.suppress(redis.RedisError):
            publish(self.redis, self.process, self.report())

    def _check(self) -> None:
        """Every CHECK_S end the clients whose token is gone; say what this process holds within REPORT_S of a
        change, and every CHECK_S besides."""
        checked = reported = time.monotonic()
        while not self.closed:
            time.sleep(REPORT_S)
            now = time.monotonic()
            try:
                if now - checked >= CHECK_S:
                    checked = now
                    self.check_tokens()
                if self.changed or now - reported >= CHECK_S:
                    self.changed, reported = False, now
                    publish(self.redis, self.process, self.report())
                    forget_quiet(self.redis)
            except redis.RedisError as exc:
                log.warning("hub: redis failed: %s", exc)

    def check_tokens(self) -> None:
        """End the clients whose token no longer exists, however it went."""
        with self.lock:
            by_token: dict[str, list[Follower]] = {}
            for follower in self.followers:
                if follower.token_key:
                    by_token.setdefault(follower.token_key, []).append(follower)
        tokens = list(by_token)
        gone: list[str] = []
        for start in range(0, len(tokens), 1000):
            chunk = tokens[start:start + 1000]
            pipe = self.redis.pipeline(transaction=False)
            for token_key in chunk:
                pipe.exists(token_key)
            gone += [t for t, exists in zip(chunk, pipe.execute(), strict=True) if not exists]
        with self.lock:
            for token_key in gone:
                self.revoke(token_key)

    def report(self) -> dict[str, Any]:
        """Say what this hub holds: clients (in all, and by audience), streams followed, readers, entries handed
        out."""
        with self.lock:
            audiences: dict[str, int] = {}
            for follower in self.followers:
                audiences[follower.audience] = audiences.get(follower.audience, 0) + 1
            return {"clients": len(self.followers), "audiences": audiences, "streams": len(self.streams),
                    "readers": len(self.readers), "delivered": self.delivered}


def process_name(service: str) -> str:
    """Name this process in `keys.WEB_PROCESSES`: service, host and pid."""
    return clients.process_label(service)


def publish(r: redis.Redis, process: str, report: dict[str, Any]) -> None:
    """Say what one web process holds, with when (a process gone stops being counted after STALE_S)."""
    r.hset(keys.WEB_PROCESSES, process, dumps(report | {"at": int(time.time())}))


def _said(r: redis.Redis) -> dict[str, tuple[dict[str, Any], bool]]:
    """Return what each web process said it holds, and whether it said so within STALE_S."""
    now_s = time.time()
    return {name: (report, now_s - report.get("at", 0) <= STALE_S)
            for name, report in ((n, json.loads(raw)) for n, raw in r.hgetall(keys.WEB_PROCESSES).items())}


def holding(r: redis.Redis) -> dict[str, dict[str, Any]]:
    """Return what each live web process said it holds, by process (a process gone quiet is left out)."""
    return {name: report for name, (report, live) in _said(r).items() if live}


def forget_quiet(r: redis.Redis) -> None:
    """Remove what the processes gone quiet (stopped, killed) last said."""
    quiet = [name for name, (_, live) in _said(r).items() if not live]
    if quiet:
        r.hdel(keys.WEB_PROCESSES, *quiet)


def by_service(r: redis.Redis) -> dict[str, dict[str, Any]]:
    """Return what the live web processes of each service hold together: processes, clients (in all and by
    audience), streams and readers."""
    totals: dict[str, dict[str, Any]] = {}
    for name, report in holding(r).items():
        total = totals.setdefault(name.split("/", 1)[0], {"processes": 0, "clients": 0, "streams": 0, "readers": 0,
                                                          "audiences": {}})
        total["processes"] += 1
        for part in ("clients", "streams", "readers"):
            total[part] += report.get(part, 0)
        for audience, count in report.get("audiences", {}).items():
            total["audiences"][audience] = total["audiences"].get(audience, 0) + count
    return totals
