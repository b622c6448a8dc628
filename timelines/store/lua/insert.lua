-- Sorted, idempotent insert of one id into many live lists (one round trip per
-- fan-out batch). KEYS: the lists; ARGV: id, cap, trim slack. Returns how many
-- lists took the id. Uses older() (lib/older.lua). On a cluster it runs in its
-- cross-slot form (core.redis.CROSS_SLOT_PROLOGUE): the lists of many slots on one
-- node in one call, which this script allows as it treats each list alone and a
-- retry changes nothing.
--
-- The common case, an id newer than the head, costs two commands (LINDEX, LPUSH);
-- a missing key (a user not reading) costs one. Otherwise it walks from the head
-- while entries are newer, skips an id already present (retries are free), and
-- inserts before the first older entry, so out-of-order deliveries keep the list
-- sorted. An id older than everything in a list without the sentinel lies below
-- the cached range and is left to PostgreSQL.
local id = ARGV[1]
local cap = tonumber(ARGV[2])
local limit = cap + tonumber(ARGV[3])
local written = 0
-- Every head is read before any list is written: on a cluster, a key the node does
-- not serve (a slot that moved) stops the call before it wrote anything, and the
-- call is sent again per slot (core.redis.Script.per_node) with an exact count.
local heads = {}
for i, key in ipairs(KEYS) do heads[i] = redis.call('LINDEX', key, 0) end
for i, key in ipairs(KEYS) do
  local head = heads[i]
  if head then
    local len = 0
    if older(head, id) then
      len = redis.call('LPUSH', key, id)
    elseif head ~= id then
      local pos, chunk, pivot = 1, 8, nil
      while pivot == nil do
        local items = redis.call('LRANGE', key, pos, pos + chunk - 1)
        if #items == 0 then pivot = false end
        for _, e in ipairs(items) do
          if e == id then pivot = false break end
          if older(e, id) then pivot = e break end
          pos = pos + 1
        end
        chunk = chunk * 4
      end
      if pivot then len = redis.call('LINSERT', key, 'BEFORE', pivot, id) end
    end
    if len > 0 then
      written = written + 1
      if len > limit then redis.call('LTRIM', key, 0, cap - 1) end
    end
  end
end
return written
