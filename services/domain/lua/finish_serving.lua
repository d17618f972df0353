-- Ends the ticket the counter serves (KEYS[1] is the counter hash) with a status, and records its
-- service time for the wait estimates when it was served. Returns {number, day} or false.
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
