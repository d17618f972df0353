-- KEYS: counter hash; ARGV: ticket root, recall limit, now (ISO). Returns {number, day, recalls}.
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
