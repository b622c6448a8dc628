"""The Redis timeline store: the only module that knows timeline key names and scripts.

A home timeline is a Redis LIST of decimal tweet ids, newest first (Redis packs
each integer-looking entry into 8-10 bytes). The list covers a gapless range of
the user's timeline: every visible tweet newer than its last entry is in it.
When the list holds the *whole* timeline, a sentinel ``0`` closes it, so an
empty or short timeline is still "cached" and the reader knows nothing older
exists; without the sentinel, older pages continue from PostgreSQL.

Every write path goes through a script that first checks the key exists, so a
user who stopped reading (the key expired after ``TIMELINE_INACTIVE_DAYS``) never
gets a timeline back by a side door; only a read rebuilds one.
"""
from dataclasses import dataclass

from django.conf import settings
from django_redis import get_redis_connection

SENTINEL = b"0"

# Compare two decimal ids without converting (Lua numbers are doubles, exact
# only to 2^53): a shorter string is a smaller number, equal lengths compare
# lexically.
_LUA_OLDER = """
local function older(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
"""

# Sorted, idempotent insert of one id into many live timelines (one round trip
# per fan-out batch). Walks from the head while entries are newer (usually no
# step at all), skips an id already present (retries are free), and inserts
# before the first older entry, so out-of-order deliveries keep the list sorted.
# An id older than everything in a list without the sentinel lies below the
# cached range and is left to PostgreSQL.
_INSERT = _LUA_OLDER + """
local id = ARGV[1]
local cap = tonumber(ARGV[2])
local limit = cap + tonumber(ARGV[3])
local written = 0
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    local pos, chunk, pivot = 0, 8, nil
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
    if pivot then
      if pos == 0 then
        redis.call('LPUSH', key, id)
      else
        redis.call('LINSERT', key, 'BEFORE', pivot, id)
      end
      written = written + 1
      if redis.call('LLEN', key) > limit then
        redis.call('LTRIM', key, 0, cap - 1)
      end
    end
  end
end
return written
"""

# Merge a freshly built run of ids (newest first, covering the timeline down to
# its last id, or all of it when ARGV[3] is '1') into whatever the key holds now,
# atomically. Used by rebuilds: a concurrent rebuild or fan-out that got there
# first is merged with, never overwritten. Both inputs are gapless down to their
# own last id, so their union is gapless down to the lower of the two. The run
# was read from PostgreSQL at generation ARGV[4]; if the user's follow graph has
# changed since (the generation moved on), nothing is written.
_MERGE = _LUA_OLDER + """
local key = KEYS[1]
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[4] then
  return -1  -- the follow graph changed since this run was read: it is stale
end
local cap = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local complete = ARGV[3] == '1'
local incoming = {}
for i = 5, #ARGV do incoming[#incoming + 1] = ARGV[i] end
local existing = redis.call('LRANGE', key, 0, -1)
if #existing > 0 and existing[#existing] == '0' then
  complete = true
  existing[#existing] = nil
end
local merged, i, j = {}, 1, 1
while #merged < cap and (i <= #existing or j <= #incoming) do
  local a, b = existing[i], incoming[j]
  if b == nil or (a ~= nil and older(b, a)) then
    merged[#merged + 1] = a; i = i + 1
  elseif a == nil or older(a, b) then
    merged[#merged + 1] = b; j = j + 1
  else
    merged[#merged + 1] = a; i = i + 1; j = j + 1
  end
end
if i <= #existing or j <= #incoming then complete = false end
if complete then merged[#merged + 1] = '0' end
redis.call('DEL', key)
for k = 1, #merged, 1000 do
  redis.call('RPUSH', key, unpack(merged, k, math.min(k + 999, #merged)))
end
if #merged > 0 then redis.call('EXPIRE', key, ttl) end
return #merged
"""


_EVICT = """
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
if ARGV[2] == '1' then redis.call('DEL', KEYS[1]) end
return 1
"""


@dataclass(frozen=True)
class Window:
    """What the cache holds of one timeline: ids newest first, and whether that is all of it."""

    ids: list[int]
    complete: bool


@dataclass(frozen=True)
class HomeState:
    """One round trip's worth of a user's cached state."""

    window: Window | None  # None: not cached
    generation: int
    followees: set[int] | None  # None: not cached, or cached at an older generation


def _redis():
    return get_redis_connection("default")


def timeline_key(user_id: int) -> str:
    return f"{settings.REDIS_KEY_PREFIX}tl:{{{user_id}}}"


def _generation_key(user_id: int) -> str:
    return f"{settings.REDIS_KEY_PREFIX}tlg:{{{user_id}}}"


def _followees_key(user_id: int) -> str:
    return f"{settings.REDIS_KEY_PREFIX}fg:{{{user_id}}}"


def _ttl_seconds() -> int:
    return settings.TIMELINE_INACTIVE_DAYS * 24 * 3600


_scripts: dict[str, object] = {}


def _script(name: str, source: str):
    script = _scripts.get(name)
    if script is None:
        script = _scripts[name] = _redis().register_script(source)
    return script


def insert(*, user_ids: list[int], tweet_id: int) -> int:
    """Insert one tweet id into the live timelines of ``user_ids``; returns how many took it."""
    if not user_ids:
        return 0
    return _script("insert", _INSERT)(
        keys=[timeline_key(uid) for uid in user_ids],
        args=[tweet_id, settings.TIMELINE_MAX_ENTRIES, settings.TIMELINE_TRIM_SLACK],
        client=_redis(),
    )


def merge(*, user_id: int, ids: list[int], complete: bool, generation: int) -> bool:
    """Merge a rebuilt run of ids into the user's timeline, creating it if absent.

    Returns False, writing nothing, if the follow graph changed since ``generation``.
    """
    written = _script("merge", _MERGE)(
        keys=[timeline_key(user_id), _generation_key(user_id)],
        args=[settings.TIMELINE_MAX_ENTRIES, _ttl_seconds(), "1" if complete else "0", generation, *ids],
        client=_redis(),
    )
    return written >= 0


def read(*, user_id: int) -> HomeState:
    """The cached window of a timeline (refreshing its idle TTL), its generation and cached followees."""
    key = timeline_key(user_id)
    pipe = _redis().pipeline(transaction=False)
    # One entry past the cap tells whether the sentinel closes the list.
    pipe.lrange(key, 0, settings.TIMELINE_MAX_ENTRIES)
    pipe.expire(key, _ttl_seconds())
    pipe.get(_generation_key(user_id))
    pipe.get(_followees_key(user_id))
    raw, existed, generation, followees = pipe.execute()
    generation = int(generation or 0)
    window = None
    if existed:
        complete = bool(raw) and raw[-1] == SENTINEL
        window = Window(ids=[int(x) for x in raw[: settings.TIMELINE_MAX_ENTRIES] if x != SENTINEL],
                        complete=complete)
    return HomeState(window=window, generation=generation, followees=_parse_followees(followees, generation))


def _parse_followees(raw: bytes | None, generation: int) -> set[int] | None:
    if raw is None:
        return None
    tagged, _, ids = raw.partition(b"|")
    if int(tagged) != generation:
        return None
    return {int(x) for x in ids.split(b",") if x}


def followees_save(*, user_id: int, generation: int, followee_ids: set[int]) -> None:
    """Cache the user's followees as read at ``generation`` (read the generation *before* the query)."""
    value = f"{generation}|{','.join(map(str, sorted(followee_ids)))}"
    _redis().set(_followees_key(user_id), value, ex=_ttl_seconds())


def generation(*, user_id: int) -> int:
    return int(_redis().get(_generation_key(user_id)) or 0)


def follow_graph_changed(*, user_id: int, drop_timeline: bool) -> None:
    """Move the user's generation on (invalidating cached followees and in-flight rebuilds)
    and, when the timeline lacks tweets it should now have, drop it."""
    _script("evict", _EVICT)(
        keys=[timeline_key(user_id), _generation_key(user_id)],
        args=[2 * _ttl_seconds(), "1" if drop_timeline else "0"],
        client=_redis(),
    )


def claim_once(*, name: str, ttl: int = 24 * 3600) -> bool:
    """True the first time ``name`` is claimed (within ``ttl``): makes a side effect happen once across retries."""
    return bool(_redis().set(f"{settings.REDIS_KEY_PREFIX}once:{name}", 1, nx=True, ex=ttl))


def release_claim(*, name: str) -> None:
    _redis().delete(f"{settings.REDIS_KEY_PREFIX}once:{name}")


def exists(*, user_id: int) -> bool:
    return bool(_redis().exists(timeline_key(user_id)))


def evict(*, user_id: int) -> None:
    """Drop a cached timeline (an operator's or a test's eviction; the next read rebuilds it)."""
    _redis().delete(timeline_key(user_id))
