"""Presence: which managers' devices and counters' terminals are live, as their streams and pages say.

An endpoint (`device:<manager>`, `terminal:<counter>`, `display:<screen>`, `kiosk:<screen>`) is live while one of
its event streams is open (or ended less than RECONNECT_GRACE_S ago: it is reconnecting) and its page has said it
is alive within the branch's `offline_after_s`: opening a stream says so, and the page says so again every
`heartbeat_s`. The open stream alone is not proof: a frozen tab keeps its socket open, and the server's
keepalives keep flowing into it.

Each open stream is a member of the endpoint's set `keys.presence_streams`, added when the stream opens and
removed when it ends. The set lapses when the endpoint goes unheard for twice `offline_after_s`: every heartbeat
renews it, so the streams cost nothing while they stay open (no round trip of their own, however many there
are), and the members a dead web process never removed go with the set once its pages stop beating. What was
last heard of an endpoint (`keys.presence`) lapses after FORGET_S unheard. Both live in Redis, so a restarted
web process finds them as they were.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import redis

from services.domain import keys
from services.domain.branch import Branch

DEVICE, TERMINAL = "device", "terminal"
# What was last heard of an endpoint is forgotten after a day unheard.
FORGET_S = 86_400
# A stream that ended this recently counts as open: its page reconnects by itself (after 2 s, longer while a web
# process restarts), and a server that stops ends every stream without its clients going anywhere.
RECONNECT_GRACE_S = 10


def endpoint(kind: str, subject: str) -> str:
    return f"{kind}:{subject}"


def endpoints(branch: Branch) -> list[str]:
    """Return every endpoint a branch's config names: its screens, its counters' terminals, its managers' devices."""
    return ([endpoint(s.kind, s.id) for s in branch.screens]
            + [endpoint(TERMINAL, c.id) for c in branch.counters]
            + [endpoint(DEVICE, m.id) for m in branch.managers])


@dataclass(frozen=True)
class Presence:
    """Where an endpoint stands at a moment: live, how many streams it has open, when it was last heard of, since
    when it is connected, and when its last stream ended (ms). A stream whose process died ends unsaid."""

    endpoint: str
    live: bool
    streams: int
    seen_ms: int | None
    since_ms: int | None
    left_ms: int | None = None

    @property
    def state(self) -> str:
        """Say where it stands: live; offline (supervised, not live); or unsupervised (never heard of)."""
        return "live" if self.live else "offline" if self.supervised else "unsupervised"

    @property
    def supervised(self) -> bool:
        """Say whether the endpoint was heard of in the last FORGET_S: one never heard of is not watched."""
        return self.seen_ms is not None

    @property
    def offline_since_ms(self) -> int | None:
        """Return since when a supervised endpoint that is not live has been offline, as best known.

        With a stream open, since it was last heard of (a frozen page). With none, the earlier of that and the
        end of its last stream: a page closed stops its heartbeats at once, while the server learns of the closed
        socket only at its next keepalive; a page whose stream broke while it still beats is offline since the
        stream ended.
        """
        if self.live or self.seen_ms is None:
            return None
        if self.streams or self.left_ms is None:
            return self.seen_ms
        return min(self.seen_ms, self.left_ms)


def claim_s(branch: Branch) -> int:
    """Return how long an endpoint's streams are believed open without a word from its page."""
    return max(4, int(2 * branch.supervision.offline_after_s))


def opened(r: redis.Redis, branch: Branch, name: str, connection: str, now_ms: int) -> None:
    """Record that an endpoint opened a stream: it is heard of now, and connected since now unless it already was."""
    streams, heard_key = _keys(branch.id, name)
    pipe = r.pipeline()
    pipe.scard(streams)
    pipe.sadd(streams, connection)
    pipe.expire(streams, claim_s(branch))
    pipe.hset(heard_key, "seen", now_ms)
    pipe.expire(heard_key, FORGET_S)
    already = pipe.execute()[0]
    if not already:
        r.hset(heard_key, "since", now_ms)


def closed(r: redis.Redis, branch_id: str, name: str, connection: str, now_ms: int) -> None:
    """Remove an ended stream, and say when it ended."""
    streams, heard_key = _keys(branch_id, name)
    pipe = r.pipeline(transaction=False)
    pipe.srem(streams, connection)
    pipe.hset(heard_key, "left", now_ms)
    pipe.expire(heard_key, FORGET_S)
    pipe.execute()


def heard(r: redis.Redis, branch: Branch, name: str, now_ms: int) -> None:
    """Record an endpoint's heartbeat: its page is running, and so, as far as anyone knows, are its streams."""
    streams, heard_key = _keys(branch.id, name)
    pipe = r.pipeline(transaction=False)
    pipe.hset(heard_key, "seen", now_ms)
    pipe.expire(heard_key, FORGET_S)
    pipe.expire(streams, claim_s(branch))
    pipe.execute()


def of(r: redis.Redis, branch: Branch, names: Iterable[str], now_ms: int) -> list[Presence]:
    """Return where each endpoint stands now, in one round trip."""
    names = list(names)
    pipe = r.pipeline(transaction=False)
    queue_of(pipe, branch, names)
    return read_of(branch, names, iter(pipe.execute()), now_ms)


def queue_of(pipe: redis.client.Pipeline, branch: Branch, names: Iterable[str]) -> None:
    """Add the reads of these endpoints' presence to a pipeline; read_of reads their replies."""
    for name in names:
        streams, heard_key = _keys(branch.id, name)
        pipe.scard(streams)
        pipe.hmget(heard_key, "seen", "since", "left")


def read_of(branch: Branch, names: Iterable[str], replies: Iterator[Any], now_ms: int) -> list[Presence]:
    """Return where each endpoint stands, from the replies to queue_of's reads."""
    fresh_ms = now_ms - int(branch.supervision.offline_after_s * 1000)
    found = []
    for name in names:
        streams_open, (seen, since, left) = next(replies), next(replies)
        seen_ms = int(seen) if seen else None
        reconnecting = bool(left) and now_ms - int(left) <= RECONNECT_GRACE_S * 1000
        live = (bool(streams_open) or reconnecting) and seen_ms is not None and seen_ms >= fresh_ms
        found.append(Presence(name, live, streams_open, seen_ms, int(since) if since and live else None,
                              int(left) if left else None))
    return found


@dataclass(frozen=True)
class Paged:
    """A manager a new page goes to, and whether their device was live then."""

    manager: str
    live: bool


def route(r: redis.Redis, branch: Branch, now_ms: int) -> list[Paged]:
    """Return whom a new page goes to: the managers in escalation order up to the first whose device is live.

    The levels before it are skipped for being offline; with no device live at all, the first level alone (the
    page is still made, and is there when a device connects).
    """
    return route_from(branch, of(r, branch, _devices(branch), now_ms))


def queue_route(pipe: redis.client.Pipeline, branch: Branch) -> None:
    """Add the reads route needs to a pipeline (a caller's round trip carries them); read_route reads them."""
    queue_of(pipe, branch, _devices(branch))


def read_route(branch: Branch, replies: Iterator[Any], now_ms: int) -> list[Paged]:
    return route_from(branch, read_of(branch, _devices(branch), replies, now_ms))


def _devices(branch: Branch) -> list[str]:
    return [endpoint(DEVICE, m.id) for m in branch.managers]


def route_from(branch: Branch, states: list[Presence]) -> list[Paged]:
    """Return whom a new page goes to, from where each manager's device stands (in escalation order)."""
    for index, state in enumerate(states):
        if state.live:
            return [Paged(m.id, s.live) for m, s in zip(branch.managers[:index + 1], states, strict=False)]
    return [Paged(branch.managers[0].id, False)]


def _keys(branch_id: str, name: str) -> tuple[str, str]:
    return keys.presence_streams(branch_id, name), keys.presence(branch_id, name)
