-- Records a called ticket's wait in the branch's stats hash (services/domain/counts.py): a count, the histogram
-- bucket (bounds: counts.WAIT_BUCKETS_S), the sum and the number of waits.
local function record_wait(stats, category, wait_s)
  local bounds = {$WAIT_BUCKETS_S}
  local bucket = '+Inf'
  for _, bound in ipairs(bounds) do
    if wait_s <= bound then
      bucket = tostring(bound)
      break
    end
  end
  redis.call('HINCRBY', stats, 'tickets_called:' .. category, 1)
  redis.call('HINCRBY', stats, 'wait_bucket:' .. category .. ':' .. bucket, 1)
  redis.call('HINCRBYFLOAT', stats, 'wait_sum:' .. category, wait_s)
  redis.call('HINCRBY', stats, 'wait_count:' .. category, 1)
end
