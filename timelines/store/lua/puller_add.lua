-- An author's first pulled tweet: readers' cached pull sets are stale. KEYS: the
-- set of authors with pulled tweets, the pull epoch; ARGV: the author. Returns
-- the pull epoch.
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then redis.call('INCR', KEYS[2]) end
return redis.call('GET', KEYS[2])
