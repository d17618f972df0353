-- KEYS: counter hash, target line. ARGV: ticket root, today, new category ('' = same), target counter
-- ('' = none: the category's line), counter id, now (ISO).
-- The ticket goes back to waiting in the target line with its issue time as score: it keeps its place.
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
