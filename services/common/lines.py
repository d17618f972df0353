"""Waiting lines: one Redis sorted set per branch, day and category, plus one per counter for transfers.

The kiosk adds a ticket and a counter takes the next one, each in one Lua script, so two counters
calling at the same instant never get the same ticket and no ticket is half written. Which line a
counter takes from is decided inside the same script, from the lanes its routing gives (see
`services.common.counters.routing`):

1. a ticket that has waited past its lane's wait limit is called first (the oldest such);
2. then the priority lanes in order (tickets transferred to this counter, redirected categories);
3. then the counter's own categories: in order, or by smooth weighted round robin when weighted.

A line's score is the ticket's issue time (ms), so a transferred ticket keeps its place.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NoReturn

import redis
from redis.commands.core import Script

from services.common import keys, metrics

# Ends the ticket the counter serves (KEYS[1] is the counter hash) with a status, and records its
# service time for the wait estimates when it was served. Returns {number, day} or false.
_FINISH_SERVING = """
local function finish_serving(counter, root, status, now_iso, now_ms, service_root, samples, ttl)
  local serving = redis.call('HGET', counter, 'serving')
  if not serving or serving == '' then
    return false
  end
  local day = redis.call('HGET', counter, 'serving_day')
  local ticket = root .. day .. ':' .. serving
  if redis.call('HGET', ticket, 'status') == 'called' then
    redis.call('HSET', ticket, 'status', status, 'served_at', now_iso)
    local called_ms = tonumber(redis.call('HGET', ticket, 'called_ms'))
    if status == 'served' and called_ms then
      local times = service_root .. day .. ':' .. redis.call('HGET', ticket, 'category')
      redis.call('LPUSH', times, math.max(0, now_ms - called_ms))
      redis.call('LTRIM', times, 0, samples - 1)
      redis.call('EXPIRE', times, ttl)
    end
  end
  redis.call('HSET', counter, 'serving', '', 'serving_day', '')
  return {serving, day}
end
"""

# KEYS: seq, line, days, stats, stale screens set, then one key per allowance window.
# ARGV: ticket key prefix, number prefix, category, issued_at, score (ms), day, history TTL (s), branch id,
#       then per allowance: limit, window (s).
# An allowance used up refuses the ticket before anything is written (RATE_LIMITED <index>); an issued ticket
# counts in every window, in the same script, so only tickets actually issued use up an allowance.
# The score is kept strictly above the line's last so that tickets issued in one millisecond keep order.
# The branch joins the set of screens the kiosk worker redraws (a burst of tickets, one redraw).
# Returns {number, position in its line}.
_ISSUE = """
local windows = #KEYS - 5
for i = 1, windows do
  if tonumber(redis.call('GET', KEYS[5 + i]) or '0') >= tonumber(ARGV[7 + 2 * i]) then
    return redis.error_reply('RATE_LIMITED ' .. i)
  end
end
local n = redis.call('INCR', KEYS[1])
local number = string.format('%s%03d', ARGV[2], n)
local score = tonumber(ARGV[5])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if #last > 0 and tonumber(last[2]) >= score then
  score = tonumber(last[2]) + 1
end
redis.call('HSET', ARGV[1] .. number, 'number', number, 'category', ARGV[3], 'status', 'waiting',
  'issued_at', ARGV[4], 'score', score, 'day', ARGV[6])
redis.call('ZADD', KEYS[2], score, number)
-- The day's history lives history_days (+1), then Redis removes it.
redis.call('EXPIRE', ARGV[1] .. number, ARGV[7])
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('EXPIRE', KEYS[2], ARGV[7])
redis.call('SADD', KEYS[3], ARGV[6])
redis.call('HINCRBY', KEYS[4], 'tickets_issued:' .. ARGV[3], 1)
for i = 1, windows do
  if redis.call('INCR', KEYS[5 + i]) == 1 then
    redis.call('EXPIRE', KEYS[5 + i], ARGV[8 + 2 * i])
  end
end
redis.call('SADD', KEYS[5], ARGV[8])
-- Its score is the line's highest, so its position is the line's length.
return {number, redis.call('ZCARD', KEYS[2])}
"""

# KEYS: counter hash, calls list, stats hash, then one line per lane.
# ARGV: 1 ticket root, 2 day, 3 counter id, 4 window, 5 now (ISO), 6 now (ms), 7 weighted (0/1),
#       8 service root, 9 samples, 10 history TTL (s), then per lane: name, weight, wait limit (ms, 0 = none),
#       priority (0/1).
_CALL_NEXT = _FINISH_SERVING + metrics.lua_wait_bucket() + """
local counter = KEYS[1]
local status = redis.call('HGET', counter, 'status')
if status and status ~= 'open' then
  return redis.error_reply('COUNTER_NOT_OPEN ' .. status)
end
local now_ms = tonumber(ARGV[6])
local finished = finish_serving(counter, ARGV[1], 'served', ARGV[5], now_ms, ARGV[8], tonumber(ARGV[9]),
  tonumber(ARGV[10]))
local lanes = (#ARGV - 10) / 4
local heads = {}
for i = 1, lanes do
  local head = redis.call('ZRANGE', KEYS[3 + i], 0, 0, 'WITHSCORES')
  if #head > 0 then
    heads[i] = {head[1], tonumber(head[2])}
  end
end
local function arg(i, field)
  return ARGV[10 + 4 * (i - 1) + field]
end
local pick = nil
-- 1. the wait limit wins over everything: the oldest ticket past its lane's limit
for i = 1, lanes do
  local limit = tonumber(arg(i, 3))
  if heads[i] and limit > 0 and now_ms - heads[i][2] >= limit and (not pick or heads[i][2] < heads[pick][2]) then
    pick = i
  end
end
-- 2. priority lanes, in order
if not pick then
  for i = 1, lanes do
    if heads[i] and arg(i, 4) == '1' then
      pick = i
      break
    end
  end
end
-- 3. the counter's own categories: in order, or smooth weighted round robin over the non-empty ones
if not pick then
  if ARGV[7] == '1' then
    local total, best, best_credit = 0, nil, nil
    local credits = {}
    for i = 1, lanes do
      if heads[i] and arg(i, 4) == '0' then
        local weight = tonumber(arg(i, 2))
        credits[i] = (tonumber(redis.call('HGET', counter, 'credit:' .. arg(i, 1))) or 0) + weight
        total = total + weight
        if not best or credits[i] > best_credit then
          best, best_credit = i, credits[i]
        end
      end
    end
    if best then
      credits[best] = credits[best] - total
      for i, credit in pairs(credits) do
        redis.call('HSET', counter, 'credit:' .. arg(i, 1), credit)
      end
      pick = best
    end
  else
    for i = 1, lanes do
      if heads[i] then
        pick = i
        break
      end
    end
  end
end
if not pick then
  return false
end
local number = heads[pick][1]
redis.call('ZREM', KEYS[3 + pick], number)
local ticket = ARGV[1] .. ARGV[2] .. ':' .. number
redis.call('HSET', ticket, 'status', 'called', 'called_at', ARGV[5], 'called_ms', now_ms, 'window', ARGV[4],
  'counter', ARGV[3])
record_wait(KEYS[3], redis.call('HGET', ticket, 'category'), math.max(0, now_ms - heads[pick][2]) / 1000)
redis.call('HSET', counter, 'serving', number, 'serving_day', ARGV[2])
redis.call('LPUSH', KEYS[2], cjson.encode({number = number, window = ARGV[4], called_at = ARGV[5]}))
redis.call('LTRIM', KEYS[2], 0, 49)
redis.call('EXPIRE', KEYS[2], ARGV[10])
return {number, arg(pick, 1)}
"""

# KEYS: counter hash; ARGV: ticket root, final status, now (ISO), now (ms), service root, samples, history TTL.
_FINISH = _FINISH_SERVING + """
return finish_serving(KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]),
  tonumber(ARGV[7]))
"""

# KEYS: counter hash; ARGV: ticket root, recall limit, now (ISO). Returns {number, day, recalls}.
_RECALL = """
local serving = redis.call('HGET', KEYS[1], 'serving')
if not serving or serving == '' then
  return redis.error_reply('NOT_SERVING')
end
local ticket = ARGV[1] .. redis.call('HGET', KEYS[1], 'serving_day') .. ':' .. serving
local recalls = tonumber(redis.call('HGET', ticket, 'recalls')) or 0
if recalls >= tonumber(ARGV[2]) then
  return redis.error_reply('RECALL_LIMIT ' .. recalls)
end
redis.call('HSET', ticket, 'recalls', recalls + 1, 'recalled_at', ARGV[3])
return {serving, redis.call('HGET', KEYS[1], 'serving_day'), recalls + 1}
"""

# KEYS: counter hash, target line. ARGV: ticket root, today, new category ('' = same), target counter
# ('' = none: the category's line), counter id, now (ISO).
# The ticket goes back to waiting in the target line with its issue time as score: it keeps its place.
_TRANSFER = """
local serving = redis.call('HGET', KEYS[1], 'serving')
if not serving or serving == '' then
  return redis.error_reply('NOT_SERVING')
end
if redis.call('HGET', KEYS[1], 'serving_day') ~= ARGV[2] then
  return redis.error_reply('OLD_TICKET')
end
local ticket = ARGV[1] .. ARGV[2] .. ':' .. serving
if ARGV[3] ~= '' then
  redis.call('HSET', ticket, 'category', ARGV[3])
end
if ARGV[4] ~= '' then
  redis.call('HSET', ticket, 'to_counter', ARGV[4])
else
  redis.call('HDEL', ticket, 'to_counter')
end
redis.call('HSET', ticket, 'status', 'waiting', 'transferred_from', ARGV[5], 'transferred_at', ARGV[6])
redis.call('HINCRBY', ticket, 'transfers', 1)
redis.call('HDEL', ticket, 'called_at', 'called_ms', 'window', 'counter', 'recalls')
redis.call('ZADD', KEYS[2], redis.call('HGET', ticket, 'score'), serving)
redis.call('HSET', KEYS[1], 'serving', '', 'serving_day', '')
return serving
"""

# KEYS: the day's lines; ARGV: ticket key prefix of the day, now (ISO).
# Closes every ticket still waiting on that day as expired; the tickets themselves stay for history.
_EXPIRE = """
local expired = 0
for _, line in ipairs(KEYS) do
  for _, number in ipairs(redis.call('ZRANGE', line, 0, -1)) do
    redis.call('HSET', ARGV[1] .. number, 'status', 'expired', 'expired_at', ARGV[2])
    expired = expired + 1
  end
  redis.call('DEL', line)
end
return expired
"""


_SCRIPTS = (_ISSUE, _CALL_NEXT, _FINISH, _RECALL, _TRANSFER, _EXPIRE)
_ISSUE_SHA = hashlib.sha1(_ISSUE.encode()).hexdigest()


class CounterNotOpen(Exception):
    """The counter is paused or closed, so it takes no calls."""


class NotServing(Exception):
    """The counter serves no ticket, so there is nothing to recall, finish or transfer."""


class RecallLimit(Exception):
    """The ticket was called again as often as the branch allows."""


class OldTicket(Exception):
    """The ticket belongs to an earlier business day."""


class RateLimited(Exception):
    """An allowance is used up: no ticket was issued and nothing was counted."""

    def __init__(self, index: int):
        super().__init__(f"allowance {index} used up")
        self.index = index


@dataclass(frozen=True)
class Allowance:
    """A rate-limit window a ticket counts in: at most `limit` tickets per `window_s` seconds under `key`."""

    key: str
    limit: int
    window_s: int


@dataclass(frozen=True)
class Issued:
    """A ticket just issued: its number and its place in its line."""

    number: str
    position: int


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
    number: str
    lane: str


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
    """Read the issue script's reply from a pipeline run by `run`; raise RateLimited when it refused."""
    if isinstance(reply, redis.ResponseError):
        code, _, index = str(reply).partition(" ")
        if code == "RATE_LIMITED":
            raise RateLimited(int(index) - 1)
        raise reply
    number, position = reply
    return Issued(number=number, position=int(position))


def run(r: redis.Redis, build: Callable[[redis.client.Pipeline], None]) -> list[Any]:
    """Run a pipeline in one round trip, its scripts called by SHA; errors are left in the replies.

    redis-py's own script objects would ask SCRIPT EXISTS first, a round trip more on every pipeline. Instead
    a script Redis does not know (it restarted or failed over) fails with NOSCRIPT before it runs, so the
    scripts are loaded and the pipeline, reads and not-yet-run scripts only, is run once more.
    """
    for attempt in range(2):
        pipe = r.pipeline(transaction=False)
        build(pipe)
        replies = pipe.execute(raise_on_error=False)
        if attempt or not any(isinstance(x, redis.exceptions.NoScriptError) for x in replies):
            return replies
        for script in _SCRIPTS:
            r.script_load(script)
    raise AssertionError("unreachable")


def _raise_known(exc: redis.ResponseError) -> NoReturn:
    code = str(exc).split(" ", 1)[0]
    if code in _ERRORS:
        raise _ERRORS[code](str(exc)) from exc
    raise exc


def _registered(script: str) -> cached_property[Script]:
    """Return a property giving a Lines' client's handle on a script, registered on first use."""
    return cached_property(lambda lines: lines.r.register_script(script))


class Lines:
    """The waiting lines of one branch on one business day."""

    def __init__(self, r: redis.Redis, branch_id: str, day: str, service_samples: int = 20,
                 ttl_s: int = 91 * 86_400):
        self.r = r
        self.branch_id = branch_id
        self.day = day
        self.samples = service_samples
        self.ttl_s = ttl_s

    # Scripts are registered when first used: a request that only reads (or issues by SHA) registers none.
    _call_next = _registered(_CALL_NEXT)
    _finish = _registered(_FINISH)
    _recall = _registered(_RECALL)
    _transfer = _registered(_TRANSFER)
    _expire = _registered(_EXPIRE)

    def key(self, category: str) -> str:
        return keys.line(self.branch_id, self.day, category)

    def counter_key(self, counter_id: str) -> str:
        return keys.counter_line(self.branch_id, self.day, counter_id)

    def add(self, category: str, prefix: str, issued_at: str, score_ms: int) -> str:
        """Number a new ticket and put it at the end of its line; return its number."""
        replies = run(self.r, lambda pipe: self.queue_add(pipe, category, prefix, issued_at, score_ms))
        return issued(replies[0]).number

    def queue_add(self, pipe: redis.client.Pipeline, category: str, prefix: str, issued_at: str, score_ms: int,
                  allowances: Sequence[Allowance] = ()) -> None:
        """Queue the issue of a ticket on a pipeline given to `run`; read its reply with `issued`.

        The ticket counts in every allowance, or is refused when one is used up; its branch's lobby screen is
        marked for redrawing (`keys.screens_stale`).
        """
        script_keys = [keys.ticket_seq(self.branch_id, self.day, category), self.key(category),
                       keys.days(self.branch_id), keys.stats(self.branch_id), keys.screens_stale(),
                       *(a.key for a in allowances)]
        args: list[str | int] = [f"{keys.ticket_root(self.branch_id)}{self.day}:", prefix, category, issued_at,
                                 score_ms, self.day, self.ttl_s, self.branch_id]
        for allowance in allowances:
            args += [allowance.limit, allowance.window_s]
        pipe.evalsha(_ISSUE_SHA, len(script_keys), *script_keys, *args)

    def call_next(self, counter_id: str, window: str, lanes: list[Lane], now_iso: str, now_ms: int,
                  *, weighted: bool = False) -> Called | None:
        """Finish the counter's ticket and call the next one its lanes give; None when nobody waits."""
        args: list[str | int] = [keys.ticket_root(self.branch_id), self.day, counter_id, window, now_iso, now_ms,
                                 int(weighted), keys.service_root(self.branch_id), self.samples, self.ttl_s]
        for lane in lanes:
            args += [lane.name, lane.weight, lane.wait_limit_ms, int(lane.priority)]
        try:
            reply = self._call_next(
                keys=[keys.counter(self.branch_id, counter_id), keys.calls(self.branch_id, self.day),
                      keys.stats(self.branch_id), *(lane.key for lane in lanes)],
                args=args,
            )
        except redis.ResponseError as exc:
            _raise_known(exc)
        return Called(number=reply[0], lane=reply[1]) if reply else None

    def finish(self, counter_id: str, status: str, now_iso: str, now_ms: int) -> Finished | None:
        """End the ticket the counter serves with status served or no_show."""
        reply = self._finish(
            keys=[keys.counter(self.branch_id, counter_id)],
            args=[keys.ticket_root(self.branch_id), status, now_iso, now_ms, keys.service_root(self.branch_id),
                  self.samples, self.ttl_s],
        )
        return Finished(number=reply[0], day=reply[1]) if reply else None

    def recall(self, counter_id: str, limit: int, now_iso: str) -> Finished:
        """Count one more call of the counter's ticket, refusing past the limit."""
        try:
            number, day, _ = self._recall(keys=[keys.counter(self.branch_id, counter_id)],
                                          args=[keys.ticket_root(self.branch_id), limit, now_iso])
        except redis.ResponseError as exc:
            _raise_known(exc)
        return Finished(number=number, day=day)

    def transfer(self, counter_id: str, now_iso: str, *, category: str | None = None,
                 to_counter: str | None = None) -> str:
        """Put the counter's ticket back to waiting in another category's or counter's line, in its place."""
        target = self.counter_key(to_counter) if to_counter else self.key(category or "")
        try:
            return self._transfer(
                keys=[keys.counter(self.branch_id, counter_id), target],
                args=[keys.ticket_root(self.branch_id), self.day, category or "", to_counter or "", counter_id,
                      now_iso],
            )
        except redis.ResponseError as exc:
            _raise_known(exc)

    def expire(self, line_keys: list[str], now_iso: str) -> int:
        """Close every ticket still waiting in these lines of this day as expired; return how many."""
        if not line_keys:
            return 0
        return self._expire(keys=line_keys, args=[f"{keys.ticket_root(self.branch_id)}{self.day}:", now_iso])

    def position(self, line_key: str, number: str) -> int | None:
        rank = self.r.zrank(line_key, number)
        return None if rank is None else rank + 1

    def heads(self, line_keys: dict[str, str]) -> dict[str, LineHead]:
        """Return, per name, how many wait in that line and since when the oldest waits."""
        pipe = self.r.pipeline(transaction=False)
        for key in line_keys.values():
            pipe.zcard(key)
            pipe.zrange(key, 0, 0, withscores=True)
        replies = pipe.execute()
        heads = {}
        for i, name in enumerate(line_keys):
            count, oldest = replies[2 * i], replies[2 * i + 1]
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
