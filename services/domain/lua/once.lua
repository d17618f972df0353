-- Runs the script it wraps once per key (services/domain/once.py). It takes one more key and one more argument,
-- last: the Once key ('' for none) and how long its result is kept (s). Returns {1, result} when the script ran,
-- {0, result} when the key already held the result of an earlier run; an error reply is returned as it is and
-- keeps nothing.
local once_ttl = table.remove(ARGV)
local once_key = table.remove(KEYS)
if once_key ~= '' then
  local kept = redis.call('GET', once_key)
  if kept then
    return {0, cjson.decode(kept)[1]}
  end
end
local result = (function()
$BODY
end)()
if type(result) == 'table' and result['err'] then
  return result
end
if once_key ~= '' then
  redis.call('SET', once_key, cjson.encode({result}), 'EX', once_ttl)
end
return {1, result}
