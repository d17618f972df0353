"""Waiting lines: one Redis sorted set per branch, day and category.

The kiosk adds a ticket and a counter pops the next one, each in one Lua script, so two counters
calling at the same instant never get the same ticket and no ticket is half written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import redis

from services.common import keys

# KEYS: seq, line; ARGV: ticket key prefix, number prefix, category, issued_at, score (ms)
_ISSUE = """
local n = redis.call('INCR', KEYS[1])
local number = string.format('%s%03d', ARGV[2], n)
redis.call('HSET', ARGV[1] .. number,
  'number', number, 'category', ARGV[3], 'status', 'waiting', 'issued_at', ARGV[4], 'score', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[5], number)
return number
"""

# KEYS: counter hash, calls list, then the lines in the order this counter takes them.
# ARGV: ticket key prefix, counter id, window, now (ISO).
# The ticket the counter was serving is done when it calls the next one.
_CALL_NEXT = """
local status = redis.call('HGET', KEYS[1], 'status')
if status and status ~= 'open' then
  return redis.error_reply('COUNTER_NOT_OPEN ' .. status)
end
local serving = redis.call('HGET', KEYS[1], 'serving')
if serving and serving ~= '' then
  local current = ARGV[1] .. serving
  if redis.call('HGET', current, 'status') == 'called' then
    redis.call('HSET', current, 'status', 'served', 'served_at', ARGV[4])
  end
  redis.call('HSET', KEYS[1], 'serving', '')
end
for i = 3, #KEYS do
  local popped = redis.call('ZPOPMIN', KEYS[i])
  if #popped > 0 then
    local number = popped[1]
    redis.call('HSET', ARGV[1] .. number,
      'status', 'called', 'called_at', ARGV[4], 'window', ARGV[3], 'counter', ARGV[2])
    redis.call('HSET', KEYS[1], 'serving', number)
    redis.call('LPUSH', KEYS[2], cjson.encode({number = number, window = ARGV[3], called_at = ARGV[4]}))
    redis.call('LTRIM', KEYS[2], 0, 49)
    return number
  end
end
return false
"""

# KEYS: counter hash; ARGV: ticket key prefix, final status, now (ISO). Ends the current ticket.
_FINISH = """
local serving = redis.call('HGET', KEYS[1], 'serving')
if not serving or serving == '' then
  return false
end
local current = ARGV[1] .. serving
redis.call('HSET', current, 'status', ARGV[2], 'served_at', ARGV[3])
redis.call('HSET', KEYS[1], 'serving', '')
return serving
"""


class CounterNotOpen(Exception):
    """The counter is paused or closed, so it takes no calls."""


@dataclass(frozen=True)
class LineHead:
    count: int
    oldest_ms: int | None


class Lines:
    """The waiting lines of one branch on one business day."""

    def __init__(self, r: redis.Redis, branch_id: str, day: str):
        self.r = r
        self.branch_id = branch_id
        self.day = day
        self._issue = r.register_script(_ISSUE)
        self._call_next = r.register_script(_CALL_NEXT)
        self._finish = r.register_script(_FINISH)

    def key(self, category: str) -> str:
        return keys.line(self.branch_id, self.day, category)

    def add(self, category: str, prefix: str, issued_at: str, score_ms: int) -> str:
        """Number a new ticket and put it at the end of its line; return its number."""
        return self._issue(
            keys=[keys.ticket_seq(self.branch_id, self.day, category), self.key(category)],
            args=[keys.ticket_prefix(self.branch_id, self.day), prefix, category, issued_at, score_ms],
        )

    def call_next(self, counter_id: str, window: str, categories: list[str], now_iso: str) -> str | None:
        """Pop the first ticket of the first non-empty line among categories, for this counter."""
        try:
            return self._call_next(
                keys=[
                    keys.counter(self.branch_id, counter_id),
                    keys.calls(self.branch_id, self.day),
                    *(self.key(c) for c in categories),
                ],
                args=[keys.ticket_prefix(self.branch_id, self.day), counter_id, window, now_iso],
            )
        except redis.ResponseError as exc:
            if "COUNTER_NOT_OPEN" in str(exc):
                raise CounterNotOpen(str(exc)) from exc
            raise

    def finish(self, counter_id: str, status: str, now_iso: str) -> str | None:
        """End the ticket the counter serves with status served or no_show; return its number."""
        return self._finish(
            keys=[keys.counter(self.branch_id, counter_id)],
            args=[keys.ticket_prefix(self.branch_id, self.day), status, now_iso],
        )

    def position(self, category: str, number: str) -> int | None:
        rank = self.r.zrank(self.key(category), number)
        return None if rank is None else rank + 1

    def heads(self, categories: list[str]) -> dict[str, LineHead]:
        """Return, per category, how many wait and since when the oldest waits."""
        pipe = self.r.pipeline(transaction=False)
        for c in categories:
            pipe.zcard(self.key(c))
            pipe.zrange(self.key(c), 0, 0, withscores=True)
        replies = pipe.execute()
        heads = {}
        for i, c in enumerate(categories):
            count, oldest = replies[2 * i], replies[2 * i + 1]
            heads[c] = LineHead(count=count, oldest_ms=int(oldest[0][1]) if oldest else None)
        return heads

    def waiting(self, category: str, limit: int = 200) -> list[str]:
        return self.r.zrange(self.key(category), 0, limit - 1)

    def recent_calls(self, limit: int = 6) -> list[dict]:
        return [json.loads(item) for item in self.r.lrange(keys.calls(self.branch_id, self.day), 0, limit - 1)]
