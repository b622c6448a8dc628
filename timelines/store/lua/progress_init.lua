-- Record the batches of a fan-out, once. KEYS: the fan-out's hash; ARGV: its TTL,
-- then the batch names. Returns 1 if this call recorded them, 0 if they were
-- recorded already (a retried or duplicated coordinator).
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 2, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], 1) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
