-- KEYS: seq, line, days, stats, stale screens set, then one key per allowance window.
-- ARGV: ticket key prefix, number prefix, category, issued_at, score (ms), day, history TTL (s), branch id,
--       then per allowance: limit, window (s).
-- An allowance used up refuses the ticket before anything is written (RATE_LIMITED <index>); an issued ticket
-- counts in every window, in the same script, so only tickets actually issued use up an allowance.
-- The score is kept strictly above the line's last so that tickets issued in one millisecond keep order.
-- The branch joins the set of screens the kiosk worker redraws (a burst of tickets, one redraw).
-- Returns {number, position in its line}.
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
