-- A first page's newest ids and the values stored under them, in one call: the reader's
-- timeline and the tweet-cache entries of the page's tweets, pulled ones included, in the
-- reader's first round trip.
-- KEYS: the timeline.
-- ARGV: the last index to read (LRANGE's stop); how many values to read; the prefix of the
-- values' keys (a value's key is the prefix, then the id); then, to merge in the pulled
-- lists of the reader's followed celebrities, the reader's cached graph, generation and
-- pull epoch keys and the two halves of a pulled list's key around the author's id.
-- Returns {ids, asked, values}: the LRANGE, the ids whose values were read and the values
-- (a missing one as nil). The ids asked are the newest of the timeline's and of the pulled
-- lists' newest ids (the sentinel left out): the top of the merge the reader makes, which
-- the page's tweets come from. A graph cached at another generation or pull epoch (or
-- absent, or with ids over 4 bytes) adds no pulled list: its reader reads them again anyway.
-- None of this is the caller's to trust: an id it wants and did not get is read after.
-- The keys past KEYS[1] are not declared, so only a single server may run this: on a Redis
-- Cluster the values are read in the next round trip. Uses older() (lib/older.lua).
local ids = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]))
local count = tonumber(ARGV[2])
local lists = {ids}

if ARGV[4] then
  local graph = redis.call('GET', ARGV[4])
  if graph then
    local tag = (redis.call('GET', ARGV[5]) or '0') .. ':' .. (redis.call('GET', ARGV[6]) or '0') .. ':4:'
    local bar = string.find(graph, '|', 1, true)
    if bar and string.sub(graph, 1, #tag) == tag then
      local followees = tonumber(string.sub(graph, #tag + 1, bar - 1))
      if followees then
        for pos = bar + 1 + 4 * followees, #graph - 3, 4 do
          local author = struct.unpack('<I4', graph, pos)
          lists[#lists + 1] = redis.call('LRANGE', ARGV[7] .. string.format('%d', author) .. ARGV[8], 0, count - 1)
        end
      end
    end
  end
end

local asked, seen = {}, {}
for _, list in ipairs(lists) do
  for i = 1, math.min(#list, count) do
    local id = list[i]
    if id ~= '0' and not seen[id] then
      seen[id] = true
      asked[#asked + 1] = id
    end
  end
end
table.sort(asked, function(a, b) return older(b, a) end)
for i = #asked, count + 1, -1 do asked[i] = nil end
if #asked == 0 then return {ids, {}, {}} end
local keys = {}
for i, id in ipairs(asked) do keys[i] = ARGV[3] .. id end
return {ids, asked, redis.call('MGET', unpack(keys))}
