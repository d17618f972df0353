-- KEYS: seq, line, days, stats, stale screens set, the category's service times, the redirects, one key per
--       counter of the branch (in the branch's order), then one key per allowance window.
-- ARGV: ticket key prefix, number prefix, category, issued_at, score (ms), day, history TTL (s), branch id,
--       the estimate's terms as JSON ({"prior_s", "prior_n", "counters": [[id, serves the category (0/1),
--       pause_redirect or ""], ...]}), then per allowance: limit, window (s).
-- An allowance used up refuses the ticket before anything is written (RATE_LIMITED <index>); an issued ticket
-- counts in every window, in the same script, so only tickets actually issued use up an allowance.
-- The score is kept strictly above the line's last so that tickets issued in one millisecond keep order.
-- The branch joins the set of screens the kiosk worker redraws (a burst of tickets, one redraw).
-- The wait estimate its holder is told is worked out here, as services/domain/tickets.py works it out
-- (estimate_s, TicketReader.estimate, counters.redirect_targets and calling), and kept on the ticket.
-- Returns {number, position in its line, estimate in seconds or -1 for none}.
local spec = cjson.decode(ARGV[9])
local counters = #spec.counters
local windows = (#ARGV - 9) / 2
local function allowance_key(i) return KEYS[7 + counters + i] end
for i = 1, windows do
  if tonumber(redis.call('GET', allowance_key(i)) or '0') >= tonumber(ARGV[8 + 2 * i]) then
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
  if redis.call('INCR', allowance_key(i)) == 1 then
    redis.call('EXPIRE', allowance_key(i), ARGV[9 + 2 * i])
  end
end
redis.call('SADD', KEYS[5], ARGV[8])
-- Its score is the line's highest, so its position is the line's length.
local position = redis.call('ZCARD', KEYS[2])

-- The estimate: the category's average service time (today's samples, the configured time counted as prior_n
-- more), the open counters calling the category (its own, and the one a redirect sends it to), the free ones.
local sum, times = 0, redis.call('LRANGE', KEYS[6], 0, -1)
for _, t in ipairs(times) do sum = sum + tonumber(t) end
local service_s = (sum / 1000 + spec.prior_n * spec.prior_s) / (#times + spec.prior_n)
local status, serving, redirect_of = {}, {}, {}
for i, c in ipairs(spec.counters) do
  local state = redis.call('HMGET', KEYS[7 + i], 'status', 'serving')
  status[c[1]] = (state[1] and state[1] ~= '') and state[1] or 'open'
  serving[c[1]] = state[2] and state[2] ~= ''
  redirect_of[c[1]] = c[3]
end
local target = nil
local raw_rule = redis.call('HGET', KEYS[7], ARGV[3])
if raw_rule then
  local rule = cjson.decode(raw_rule)
  local seen, candidate = {[rule.from_counter] = true}, rule.to_counter
  while candidate and candidate ~= '' and not seen[candidate] and status[candidate] do
    if status[candidate] == 'open' then
      target = candidate
      break
    end
    seen[candidate] = true
    candidate = redirect_of[candidate]
  end
  if not target then
    for _, c in ipairs(spec.counters) do
      if c[1] ~= rule.from_counter and c[2] == 1 and status[c[1]] == 'open' then
        target = c[1]
        break
      end
    end
  end
end
local calling, free = 0, 0
for _, c in ipairs(spec.counters) do
  if status[c[1]] == 'open' and (c[2] == 1 or target == c[1]) then
    calling = calling + 1
    if not serving[c[1]] then free = free + 1 end
  end
end
local estimate = -1
if calling > 0 then
  if position <= free then
    estimate = 0
  else
    estimate = math.ceil(position * service_s / calling)
  end
  redis.call('HSET', ARGV[1] .. number, 'estimate_s', estimate)
end
return {number, position, estimate}
