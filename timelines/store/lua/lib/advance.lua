-- advance(key, ...): the next value of a counter that only ever moves forward, even
-- past the loss of its key (an expiry, a server restarted empty): at least the
-- server clock in microseconds (exact in a Lua number, < 2^53), so a value once read
-- never comes back. Extra arguments go to its SET (an expiry, say).
local function advance(key, ...)
  local now = redis.call('TIME')
  local v = math.max(tonumber(redis.call('GET', key) or '0') + 1, tonumber(now[1]) * 1000000 + tonumber(now[2]))
  redis.call('SET', key, string.format('%d', v), ...)
  return v
end
