-- A list's newest ids and the values stored under the first of them, in one call: a
-- first page's timeline and its tweets' cache entries in the reader's first round trip.
-- KEYS: the list.
-- ARGV: the last index to read (LRANGE's stop), how many of the first ids' values to
-- read, the prefix of the values' keys (a value's key is the prefix, then the id).
-- Returns {ids, values}: the LRANGE, and the values of its first ids (the sentinel left
-- out, a missing value as nil), in order. The values' keys are not declared, so only a
-- single server may run this: on a Redis Cluster they are read in the next round trip.
local ids = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]))
local keys = {}
for i = 1, math.min(#ids, tonumber(ARGV[2])) do
  if ids[i] ~= '0' then keys[#keys + 1] = ARGV[3] .. ids[i] end
end
if #keys == 0 then return {ids, {}} end
return {ids, redis.call('MGET', unpack(keys))}
