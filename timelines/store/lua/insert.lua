-- Sorted, idempotent insert of one id into many live lists (one round trip per
-- fan-out batch). ARGV: id, cap, trim slack, the floor a missing mark starts from
-- ('' for a call without marks), then (with marks) each group's number of lists.
-- KEYS: groups, each its slot's high-water mark followed by lists of that slot;
-- without marks, the lists alone. Returns how many lists took the id. Uses older()
-- (lib/older.lua).
--
-- The mark is an id no list of its slot holds anything newer than (every writer
-- of those lists raises it: this script and combine.lua). An id newer than the
-- mark is newer than every head, so each list costs one command (LPUSHX, which
-- leaves a missing key missing) and the mark moves up to the id. Otherwise, per
-- list: a missing key (a user not reading) costs one command; an id newer than
-- the head two (LINDEX, LPUSH); else the script walks from the head while
-- entries are newer, skips an id already present (retries are free), and inserts
-- before the first older entry, so out-of-order deliveries keep the list sorted.
-- An id older than everything in a list without the sentinel lies below the
-- cached range and is left to PostgreSQL. A missing mark (a new server, an
-- evicted key) is set after its slow path to the floor given, an id later than
-- any minted so far (or to the id, if newer still).
--
-- On a cluster a call carries no marks: it runs in its cross-slot form
-- (core.redis.CROSS_SLOT_PROLOGUE), the lists of many slots on one node, which
-- this script allows as it treats each list alone and a retry changes nothing.
-- There every head is read before any list is written, so a key the node does
-- not serve (a slot that moved) stops the call before it wrote anything, and the
-- call is sent again per slot (core.redis.Script.per_node) with an exact count.
local id = ARGV[1]
local cap = tonumber(ARGV[2])
local limit = cap + tonumber(ARGV[3])
local written = 0

local function place(key, head)
  if not head then return 0 end
  if older(head, id) then return redis.call('LPUSH', key, id) end
  if head == id then return 0 end
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
  if pivot then return redis.call('LINSERT', key, 'BEFORE', pivot, id) end
  return 0
end

local function took(key, len)
  if len > 0 then
    written = written + 1
    if len > limit then redis.call('LTRIM', key, 0, cap - 1) end
  end
end

if ARGV[4] == '' then
  local heads = {}
  for i, key in ipairs(KEYS) do heads[i] = redis.call('LINDEX', key, 0) end
  for i, key in ipairs(KEYS) do took(key, place(key, heads[i])) end
  return written
end

local at = 1
for g = 5, #ARGV do
  local mark_key, n = KEYS[at], tonumber(ARGV[g])
  local mark = redis.call('GET', mark_key)
  local fast = mark and older(mark, id)
  for i = at + 1, at + n do
    if fast then
      took(KEYS[i], redis.call('LPUSHX', KEYS[i], id))
    else
      took(KEYS[i], place(KEYS[i], redis.call('LINDEX', KEYS[i], 0)))
    end
  end
  if fast then
    redis.call('SET', mark_key, id)
  elseif not mark then
    if older(ARGV[4], id) then redis.call('SET', mark_key, id) else redis.call('SET', mark_key, ARGV[4]) end
  end
  at = at + n + 1
end
return written
