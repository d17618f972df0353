-- KEYS: the day's VIP-wait pages (ticket -> alert id), the cleared alerts, then the day's lines.
-- ARGV: ticket key prefix of the day, now (ISO).
-- Closes every ticket still waiting on that day as expired; the tickets themselves stay for history. A ticket
-- whose long wait was paged no longer waits: its alert is marked cleared. Returns {expired, {cleared alerts}}.
local expired, cleared = 0, {}
for i = 3, #KEYS do
  for _, number in ipairs(redis.call('ZRANGE', KEYS[i], 0, -1)) do
    redis.call('HSET', ARGV[1] .. number, 'status', 'expired', 'expired_at', ARGV[2])
    expired = expired + 1
    local paged = redis.call('HGET', KEYS[1], number)
    if paged then
      redis.call('HSET', KEYS[2], paged, cjson.encode({at = ARGV[2], reason = 'expired'}))
      cleared[#cleared + 1] = paged
    end
  end
  redis.call('DEL', KEYS[i])
end
return {expired, cleared}
