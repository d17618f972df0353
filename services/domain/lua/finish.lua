-- KEYS: counter hash; ARGV: ticket root, final status, now (ISO), now (ms), service root, samples, history TTL.
-- requires: finish_serving
return finish_serving(KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]),
  tonumber(ARGV[7]))
