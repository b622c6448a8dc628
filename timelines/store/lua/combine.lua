-- Combine a run of ids (newest first) with what a list key holds now, atomically.
-- KEYS: the list, the user's generation key (the list again for an author's list),
-- the high-water mark of the list's slot (insert.lua), raised to the newest id
-- written if it exists.
-- ARGV: mode, cap, idle TTL, whether the run is complete ('1'), the generation the
-- run was read at ('' for none), then the ids. Uses older() (lib/older.lua).
--
-- Both sides are "gapless down to their last id" (or complete, closed by the
-- sentinel). Two whole timelines vouch together down to the lower of their
-- floors; a timeline and one author's ids only down to the higher one (entries
-- below it are dropped). Modes:
--   rebuild  - create the key if absent and union with what is there (a
--              concurrent rebuild or fan-out that got there first is kept);
--   replace  - create or overwrite, ignoring what is there (a forced rebuild;
--              its caller then merges a second read);
--   backfill - only if the key exists: add one author's ids (a new followee);
--   remove   - only if the key exists: drop the given ids (a former followee).
-- With a generation, nothing is written if the user's follow graph has changed
-- since the run was read from PostgreSQL: returns -1; a missing key in backfill or
-- remove mode returns -2; otherwise the entries written.
-- rebuild/replace set the idle TTL; backfill/remove keep the key's own.
local key = KEYS[1]
local mode = ARGV[1]
local cap = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local run_complete = ARGV[4] == '1'
if ARGV[5] ~= '' and (redis.call('GET', KEYS[2]) or '0') ~= ARGV[5] then
  return -1
end
local exists = redis.call('EXISTS', key) == 1
if not exists and (mode == 'backfill' or mode == 'remove') then return -2 end
local incoming = {}
for i = 6, #ARGV do incoming[#incoming + 1] = ARGV[i] end
local existing, have = {}, exists and mode ~= 'replace'
local e_complete, e_floor = false, nil
if have then
  existing = redis.call('LRANGE', key, 0, -1)
  if existing[#existing] == '0' then existing[#existing] = nil; e_complete = true
  else e_floor = existing[#existing] end
end
local i_floor = nil
if not run_complete then i_floor = incoming[#incoming] end
local complete, floor
if mode == 'remove' then
  complete = e_complete
elseif mode == 'backfill' then
  -- one author's ids: the union vouches down to the higher floor only
  complete = e_complete and run_complete
  floor = e_floor
  if i_floor ~= nil and (floor == nil or older(floor, i_floor)) then floor = i_floor end
elseif have then
  -- two whole timelines: the union vouches down to the lower floor
  complete = e_complete or run_complete
  if not complete then
    floor = e_floor
    if i_floor ~= nil and (floor == nil or older(i_floor, floor)) then floor = i_floor end
  end
else
  complete = run_complete
end
local merged = {}
if mode == 'remove' then
  local drop = {}
  for _, id in ipairs(incoming) do drop[id] = true end
  for _, id in ipairs(existing) do
    if not drop[id] then merged[#merged + 1] = id end
  end
else
  local i, j = 1, 1
  while i <= #existing or j <= #incoming do
    local a, b = existing[i], incoming[j]
    local pick
    if b == nil or (a ~= nil and older(b, a)) then
      pick = a; i = i + 1
    elseif a == nil or older(a, b) then
      pick = b; j = j + 1
    else
      pick = a; i = i + 1; j = j + 1
    end
    if floor ~= nil and older(pick, floor) then break end
    merged[#merged + 1] = pick
  end
end
if #merged > cap then
  for k = #merged, cap + 1, -1 do merged[k] = nil end
  complete = false
end
local keep_ttl = redis.call('PTTL', key)
redis.call('DEL', key)
if complete then merged[#merged + 1] = '0' end
if #merged == 0 then return 0 end
for k = 1, #merged, 1000 do
  redis.call('RPUSH', key, unpack(merged, k, math.min(k + 999, #merged)))
end
local mark = redis.call('GET', KEYS[3])
if mark and merged[1] ~= '0' and older(mark, merged[1]) then redis.call('SET', KEYS[3], merged[1]) end
if (mode == 'backfill' or mode == 'remove') and keep_ttl > 0 then
  redis.call('PEXPIRE', key, keep_ttl)
else
  redis.call('EXPIRE', key, ttl)
end
return #merged
