-- KEYS: counter hash, calls list, stats hash, the day's VIP-wait pages (ticket -> alert id), the cleared alerts,
--       then one line per lane.
-- ARGV: 1 ticket root, 2 day, 3 counter id, 4 window, 5 now (ISO), 6 now (ms), 7 weighted (0/1),
--       8 service root, 9 samples, 10 history TTL (s), then per lane: name, weight, wait limit (ms, 0 = none),
--       priority (0/1).
-- A ticket whose long wait was paged is called: that page's condition is over, so its alert is marked cleared
-- in the same script (services/domain/pages.py clears the page). Returns {number, lane, cleared alert or ''}.
-- requires: finish_serving, record_wait
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
  local head = redis.call('ZRANGE', KEYS[5 + i], 0, 0, 'WITHSCORES')
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
redis.call('ZREM', KEYS[5 + pick], number)
local ticket = ARGV[1] .. ARGV[2] .. ':' .. number
redis.call('HSET', ticket, 'status', 'called', 'called_at', ARGV[5], 'called_ms', now_ms, 'window', ARGV[4],
  'counter', ARGV[3])
record_wait(KEYS[3], redis.call('HGET', ticket, 'category'), math.max(0, now_ms - heads[pick][2]) / 1000)
redis.call('HSET', counter, 'serving', number, 'serving_day', ARGV[2])
redis.call('LPUSH', KEYS[2], cjson.encode({number = number, window = ARGV[4], called_at = ARGV[5]}))
redis.call('LTRIM', KEYS[2], 0, 49)
redis.call('EXPIRE', KEYS[2], ARGV[10])
local paged = redis.call('HGET', KEYS[4], number)
if paged then
  redis.call('HSET', KEYS[5], paged, cjson.encode({at = ARGV[5], reason = 'called'}))
end
return {number, arg(pick, 1), paged or ''}
