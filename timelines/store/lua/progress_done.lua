-- One batch of a fan-out is written. KEYS: the fan-out's hash; ARGV: the batch
-- name. Returns 1 if it was the last one outstanding.
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 and redis.call('EXISTS', KEYS[1]) == 0 then
  return 1
end
return 0
