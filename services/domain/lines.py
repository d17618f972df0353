"""Waiting lines: one Redis sorted set per branch, day and category, plus one per counter for transfers.

The kiosk adds a ticket and a counter takes the next one, each in one Lua script, so two counters
calling at the same instant never get the same ticket and no ticket is half written. Which line a
counter takes from is decided inside the same script, from the lanes its routing gives (see
`services.domain.counters.routing`):

1. a ticket that has waited past its lane's wait limit is called first (the oldest such);
2. then the priority lanes in order (tickets transferred to this counter, redirected categories);
3. then the counter's own categories: in order, or by smooth weighted round robin when weighted.

A line's score is the ticket's issue time (ms), so a transferred ticket keeps its place.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis

from services.domain import keys, once, scripts
from services.domain.limits import Allowance, RateLimited

# The scripts a request runs act once per Idempotency-Key (services/domain/once.py); the day's expiry needs not.
ISSUE = scripts.register(scripts.load("issue", made_once=True))
CALL_NEXT = scripts.register(scripts.load("call_next", made_once=True))
FINISH = scripts.register(scripts.load("finish", made_once=True))
RECALL = scripts.register(scripts.load("recall", made_once=True))
TRANSFER = scripts.register(scripts.load("transfer", made_once=True))
EXPIRE = scripts.register(scripts.load("expire"))


class CounterNotOpen(Exception):
    """The counter is paused or closed, so it takes no calls."""


class NotServing(Exception):
    """The counter serves no ticket, so there is nothing to recall, finish or transfer."""


class RecallLimit(Exception):
    """The ticket was called again as often as the branch allows."""


class OldTicket(Exception):
    """The ticket belongs to an earlier business day."""


@dataclass(frozen=True)
class Issued:
    """A ticket just issued: its number, its place in its line, the wait it is told (None: no counter open for
    it), and fresh False when it was issued before, under a Once."""

    number: str
    position: int
    estimate_s: int | None = None
    fresh: bool = True


@dataclass(frozen=True)
class EstimateTerms:
    """What the issue script needs to work out a new ticket's wait estimate as tickets.TicketReader does: the
    configured service time (counted as prior_n samples), and each counter of the branch, in order, with
    whether it serves the category and where its customers go while it is paused."""

    prior_s: float
    prior_n: int
    counters: tuple[tuple[str, int, str], ...]

    def json(self) -> str:
        return json.dumps({"prior_s": self.prior_s, "prior_n": self.prior_n, "counters": self.counters})


@dataclass(frozen=True)
class Lane:
    """One line a counter calls from, with how the routing treats it."""

    name: str
    key: str
    weight: int = 1
    wait_limit_ms: int = 0
    priority: bool = False


@dataclass(frozen=True)
class Called:
    """A ticket called: from which lane, the alert its call cleared (a long wait that was paged), and whether
    it was called now (False: called before, under the same Once)."""

    number: str
    lane: str
    cleared: str | None = None
    fresh: bool = True


@dataclass(frozen=True)
class Finished:
    number: str
    day: str


@dataclass(frozen=True)
class LineHead:
    count: int
    oldest_ms: int | None


_ERRORS = {"COUNTER_NOT_OPEN": CounterNotOpen, "NOT_SERVING": NotServing, "RECALL_LIMIT": RecallLimit,
           "OLD_TICKET": OldTicket}


def issued(reply: Any) -> Issued:
    """Read the issue script's reply from a pipeline run by scripts.run; raise RateLimited when it refused.

    A ticket issued earlier under the same Once comes back as it was issued (`fresh` False).
    """
    if isinstance(reply, redis.ResponseError):
        code, _, index = str(reply).partition(" ")
        if code == "RATE_LIMITED":
            raise RateLimited(int(index) - 1)
        raise reply
    result, fresh = scripts.unwrap(ISSUE, reply)
    number, position, estimate = (*result, -1)[:3]  # a ticket kept under a Once before estimates were kept: none
    return Issued(number=number, position=int(position), estimate_s=None if int(estimate) < 0 else int(estimate),
                  fresh=fresh)


def call(r: redis.Redis, script: scripts.Script, script_keys: Sequence[str], args: Sequence[Any],
         once_: once.Once | None = None) -> tuple[Any, bool]:
    """Run one script in one round trip; return its result and whether it ran now (not kept from a first run).

    Its known errors become this module's exceptions.
    """
    reply = scripts.run(r, lambda pipe: scripts.queue(pipe, script, script_keys, args, once_))[0]
    if isinstance(reply, redis.ResponseError):
        code = str(reply).split(" ", 1)[0]
        if code in _ERRORS:
            raise _ERRORS[code](str(reply)) from reply
        raise reply
    return scripts.unwrap(script, reply)


class Lines:
    """The waiting lines of one branch on one business day."""

    def __init__(self, r: redis.Redis, branch_id: str, day: str, service_samples: int = 20,
                 ttl_s: int = 91 * 86_400):
        self.r = r
        self.branch_id = branch_id
        self.day = day
        self.samples = service_samples
        self.ttl_s = ttl_s

    def key(self, category: str) -> str:
        return keys.line(self.branch_id, self.day, category)

    def counter_key(self, counter_id: str) -> str:
        return keys.counter_line(self.branch_id, self.day, counter_id)

    def queue_add(self, pipe: redis.client.Pipeline, category: str, prefix: str, issued_at: str, score_ms: int,
                  terms: EstimateTerms, allowances: Sequence[Allowance] = (), once_: once.Once | None = None) -> None:
        """Queue the issue of a ticket on a pipeline given to scripts.run; read its reply with `issued`.

        The ticket counts in every allowance, or is refused when one is used up; its branch's lobby screen is
        marked for redrawing (`keys.screens_stale`); the wait its holder is told is worked out from `terms` and
        kept on it. Under a Once that already issued a ticket, that ticket is returned and nothing is written or
        counted.
        """
        script_keys = [keys.ticket_seq(self.branch_id, self.day, category), self.key(category),
                       keys.days(self.branch_id), keys.stats(self.branch_id), keys.screens_stale(),
                       keys.service_times(self.branch_id, self.day, category), keys.redirects(self.branch_id),
                       *(keys.counter(self.branch_id, c[0]) for c in terms.counters),
                       *(a.key for a in allowances)]
        args: list[str | int] = [f"{keys.ticket_root(self.branch_id)}{self.day}:", prefix, category, issued_at,
                                 score_ms, self.day, self.ttl_s, self.branch_id, terms.json()]
        for allowance in allowances:
            args += [allowance.limit, allowance.window_s]
        scripts.queue(pipe, ISSUE, script_keys, args, once_)

    def call_next(self, counter_id: str, window: str, lanes: list[Lane], now_iso: str, now_ms: int,
                  *, weighted: bool = False, once_: once.Once | None = None) -> Called | None:
        """Finish the counter's ticket and call the next one its lanes give; None when nobody waits."""
        args: list[str | int] = [keys.ticket_root(self.branch_id), self.day, counter_id, window, now_iso, now_ms,
                                 int(weighted), keys.service_root(self.branch_id), self.samples, self.ttl_s]
        for lane in lanes:
            args += [lane.name, lane.weight, lane.wait_limit_ms, int(lane.priority)]
        reply, fresh = call(self.r, CALL_NEXT,
                            [keys.counter(self.branch_id, counter_id), keys.calls(self.branch_id, self.day),
                             keys.stats(self.branch_id), keys.vip_wait_paged(self.branch_id, self.day),
                             keys.cleared(self.branch_id), *(lane.key for lane in lanes)], args, once_)
        if not reply:
            return None
        return Called(number=reply[0], lane=reply[1], cleared=reply[2] or None, fresh=fresh)

    def finish(self, counter_id: str, status: str, now_iso: str, now_ms: int,
               once_: once.Once | None = None) -> Finished | None:
        """End the ticket the counter serves with status served or no_show."""
        reply, _ = call(self.r, FINISH, [keys.counter(self.branch_id, counter_id)],
                        [keys.ticket_root(self.branch_id), status, now_iso, now_ms,
                         keys.service_root(self.branch_id), self.samples, self.ttl_s], once_)
        return Finished(number=reply[0], day=reply[1]) if reply else None

    def recall(self, counter_id: str, limit: int, now_iso: str, once_: once.Once | None = None) -> Finished:
        """Count one more call of the counter's ticket, refusing past the limit."""
        (number, day, _), _ = call(self.r, RECALL, [keys.counter(self.branch_id, counter_id)],
                                   [keys.ticket_root(self.branch_id), limit, now_iso], once_)
        return Finished(number=number, day=day)

    def transfer(self, counter_id: str, now_iso: str, *, category: str | None = None,
                 to_counter: str | None = None, once_: once.Once | None = None) -> str:
        """Put the counter's ticket back to waiting in another category's or counter's line, in its place."""
        target = self.counter_key(to_counter) if to_counter else self.key(category or "")
        number, _ = call(self.r, TRANSFER, [keys.counter(self.branch_id, counter_id), target],
                         [keys.ticket_root(self.branch_id), self.day, category or "", to_counter or "", counter_id,
                          now_iso], once_)
        return number

    def expire(self, line_keys: list[str], now_iso: str) -> tuple[int, list[str]]:
        """Close every ticket still waiting in these lines of this day as expired.

        Return how many, and the alerts of the long waits among them that were paged (now cleared).
        """
        if not line_keys:
            return 0, []
        (expired, cleared), _ = call(
            self.r, EXPIRE, [keys.vip_wait_paged(self.branch_id, self.day), keys.cleared(self.branch_id),
                              *line_keys], [f"{keys.ticket_root(self.branch_id)}{self.day}:", now_iso])
        return int(expired), list(cleared or [])

    def position(self, line_key: str, number: str) -> int | None:
        rank = self.r.zrank(line_key, number)
        return None if rank is None else rank + 1

    def heads(self, line_keys: dict[str, str]) -> dict[str, LineHead]:
        """Return, per name, how many wait in that line and since when the oldest waits."""
        pipe = self.r.pipeline(transaction=False)
        self.queue_heads(pipe, line_keys)
        return self.read_heads(line_keys, iter(pipe.execute()))

    @staticmethod
    def queue_heads(pipe: redis.client.Pipeline, line_keys: dict[str, str]) -> None:
        """Add the reads of these lines' heads to a pipeline; read_heads reads their replies."""
        for key in line_keys.values():
            pipe.zcard(key)
            pipe.zrange(key, 0, 0, withscores=True)

    @staticmethod
    def read_heads(line_keys: dict[str, str], replies: Iterator[Any]) -> dict[str, LineHead]:
        heads = {}
        for name in line_keys:
            count, oldest = next(replies), next(replies)
            heads[name] = LineHead(count=count, oldest_ms=int(oldest[0][1]) if oldest else None)
        return heads

    def category_heads(self, categories: list[str]) -> dict[str, LineHead]:
        return self.heads({c: self.key(c) for c in categories})

    def waiting(self, category: str, limit: int = 200) -> list[str]:
        return self.r.zrange(self.key(category), 0, limit - 1)

    def service_times_ms(self, categories: list[str]) -> dict[str, list[int]]:
        """Return the latest service times of each category today, newest first."""
        pipe = self.r.pipeline(transaction=False)
        self.queue_service_times(pipe, categories)
        return self.service_times(iter(pipe.execute()), categories)

    def queue_service_times(self, pipe: redis.client.Pipeline, categories: list[str]) -> None:
        """Queue the reads of service_times_ms on a pipeline; take their replies with service_times."""
        for c in categories:
            pipe.lrange(keys.service_times(self.branch_id, self.day, c), 0, -1)

    @staticmethod
    def service_times(replies: Iterator[Any], categories: list[str]) -> dict[str, list[int]]:
        return {c: [int(x) for x in next(replies)] for c in categories}

    def recent_calls(self, limit: int = 6) -> list[dict]:
        return [json.loads(item) for item in self.r.lrange(keys.calls(self.branch_id, self.day), 0, limit - 1)]
