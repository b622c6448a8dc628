"""The Redis timeline store: the only module that knows timeline key names and scripts.

A home timeline is a Redis LIST of decimal tweet ids, newest first (Redis packs
each integer-looking entry into 8-10 bytes). It holds the *pushed* tweets of
the user's followees and all of the user's own tweets, over a gapless range:
every such tweet newer than its last entry is in it. When the list holds the
*whole* range, a sentinel ``0`` closes it, so an empty or short timeline is
still "cached" and the reader knows nothing older exists; without the sentinel,
older pages continue from PostgreSQL.

A celebrity's tweets are not pushed: each author with pulled tweets has a list
of them (same shape, same rules), which readers merge in by id.

Every write path goes through a script that first checks the key exists, so a
user who stopped reading (the key expired after ``TIMELINE_INACTIVE_DAYS``) never
gets a timeline back by a side door; only a read rebuilds one.
"""
import sys
import time
from array import array
from dataclasses import dataclass

from django.conf import settings

from core import redis as core_redis

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
# per fan-out batch). The common case, an id newer than the head, costs two
# commands (LINDEX, LPUSH); a missing key (a user not reading) costs one.
# Otherwise it walks from the head while entries are newer, skips an id already
# present (retries are free), and inserts before the first older entry, so
# out-of-order deliveries keep the list sorted. An id older than everything in a
# list without the sentinel lies below the cached range and is left to PostgreSQL.
_INSERT = _LUA_OLDER + """
local id = ARGV[1]
local cap = tonumber(ARGV[2])
local limit = cap + tonumber(ARGV[3])
local written = 0
for _, key in ipairs(KEYS) do
  local head = redis.call('LINDEX', key, 0)
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
"""

# Combine a run of ids (newest first) with what a list key holds now, atomically.
# Both sides are "gapless down to their last id" (or complete, closed by the
# sentinel). Two whole timelines vouch together down to the lower of their
# floors; a timeline and one author's ids only down to the higher one (entries
# below it are dropped). Modes:
#   rebuild  - create the key if absent and union with what is there (a
#              concurrent rebuild or fan-out that got there first is kept);
#   replace  - create or overwrite, ignoring what is there (a forced rebuild;
#              its caller then merges a second read, see services);
#   backfill - only if the key exists: add one author's ids (a new followee);
#   remove   - only if the key exists: drop the given ids (a former followee).
# With a generation (ARGV[5] not empty) nothing is written if the user's follow
# graph has changed since the run was read from PostgreSQL: returns -1.
# rebuild/replace set the idle TTL; backfill/remove keep the key's own.
_COMBINE = _LUA_OLDER + """
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
if (mode == 'backfill' or mode == 'remove') and keep_ttl > 0 then
  redis.call('PEXPIRE', key, keep_ttl)
else
  redis.call('EXPIRE', key, ttl)
end
return #merged
"""

# The next value of a counter that only ever moves forward, even past the loss of
# its key (an expiry, a server restarted empty): at least the server clock in
# microseconds (exact in a Lua number, < 2^53), so a value once read never comes back.
_LUA_ADVANCE = """
local function advance(key, ...)
  local now = redis.call('TIME')
  local v = math.max(tonumber(redis.call('GET', key) or '0') + 1, tonumber(now[1]) * 1000000 + tonumber(now[2]))
  redis.call('SET', key, string.format('%d', v), ...)
  return v
end
"""

# The user's follow graph changed: move the generation on (which invalidates
# cached followees and any rebuild read before the change); optionally drop the
# timeline. Returns the new generation.
_GENERATION_ADVANCE = _LUA_ADVANCE + """
local g = advance(KEYS[2], 'EX', ARGV[1])
if ARGV[2] == '1' then redis.call('DEL', KEYS[1]) end
return g
"""

# A pulled list was written to: readers' copies of the lists are stale (see "Celebrity pull").
_PULL_SEQ_ADVANCE = _LUA_ADVANCE + """
return advance(KEYS[1])
"""

# Record the batches of a fan-out, once: returns 1 if this call recorded them,
# 0 if they were recorded already (a retried or duplicated coordinator).
_PROGRESS_INIT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 2, #ARGV do redis.call('HSET', KEYS[1], ARGV[i], 1) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

# One batch is written: 1 if it was the last one outstanding.
_PROGRESS_DONE = """
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 and redis.call('EXISTS', KEYS[1]) == 0 then
  return 1
end
return 0
"""

# An author's first pulled tweet: readers' cached pull sets are stale.
_PULLER_ADD = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then redis.call('INCR', KEYS[2]) end
return redis.call('GET', KEYS[2])
"""


@dataclass(frozen=True)
class Window:
    """What the cache holds of one id list: ids newest first, and whether that is all of it."""

    ids: list[int]
    complete: bool

    @property
    def floor(self) -> int | None:
        """The oldest id this window vouches for (None: it holds everything).

        Every id at or above the floor that belongs in the list is in it."""
        if self.complete:
            return None
        return self.ids[-1] if self.ids else _NO_FLOOR


_NO_FLOOR = (1 << 63) - 1  # an incomplete, empty window vouches for nothing


@dataclass(frozen=True)
class Graph:
    """A user's accepted followees, and those of them whose tweets may be pulled."""

    followees: set[int]
    pulled: set[int]


@dataclass(frozen=True)
class HomeState:
    """One round trip's worth of a user's cached state."""

    window: Window | None  # None: not cached
    generation: int
    pull_epoch: int
    graph: Graph | None  # None: not cached, or cached at an older generation or pull epoch
    pull_seq: int  # the pulled lists' write sequence (``author_known``)


def _redis():
    return core_redis.connection()


def _executed(commands):
    """Send the commands of a ``(queue, parse)`` pair in a round trip of their own; their parsed replies."""
    queue, parse = commands
    pipe = _redis().pipeline(transaction=False)
    queue(pipe)
    return parse(pipe.execute())


def _prefixed(name: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}{name}"


def timeline_key(user_id: int) -> str:
    return timeline_keys([user_id])[0]


def timeline_keys(user_ids: list[int]) -> list[str]:
    """``timeline_key`` of each of ``user_ids``, built in one go (a fan-out names tens of thousands)."""
    prefix = settings.REDIS_KEY_PREFIX
    return [f"{prefix}tl:{{{uid}}}" for uid in user_ids]


def author_key(author_id: int) -> str:
    """The author's pulled tweets (celebrity pull), newest first."""
    return _prefixed(f"ut:{{{author_id}}}")


def _generation_key(user_id: int) -> str:
    return _prefixed(f"tlg:{{{user_id}}}")


def _graph_key(user_id: int) -> str:
    # Packed (see graph_save); "fg:" held the decimal layout, so code still reading that never meets this one.
    return _prefixed(f"fgp:{{{user_id}}}")


def _progress_key(tweet_id: int) -> str:
    return _prefixed(f"fo:{tweet_id}")


# Both in one slot (the hash tag ``{pull}``): ``puller_add`` updates them together.
def _pullers_key() -> str:
    return _prefixed("pullers:{pull}")


def _pull_epoch_key() -> str:
    return _prefixed("pull-epoch:{pull}")


def _pull_seq_key() -> str:
    return _prefixed("pull-seq:{pull}")


# The live-timeline bitmaps and their flag share that slot too: a reader's round
# trip reaches it already (see "Live timelines" below).
def _live_key(period: int) -> str:
    return _prefixed(f"tl-live:{period}:{{pull}}")


def _live_indexed_key() -> str:
    return _prefixed("tl-live-indexed:{pull}")


def _ttl_seconds() -> int:
    return settings.TIMELINE_INACTIVE_DAYS * 24 * 3600


_INSERT_SCRIPT = core_redis.Script(_INSERT)
_COMBINE_SCRIPT = core_redis.Script(_COMBINE)
_GENERATION_ADVANCE_SCRIPT = core_redis.Script(_GENERATION_ADVANCE)
_PROGRESS_INIT_SCRIPT = core_redis.Script(_PROGRESS_INIT)
_PROGRESS_DONE_SCRIPT = core_redis.Script(_PROGRESS_DONE)
_PULLER_ADD_SCRIPT = core_redis.Script(_PULLER_ADD)
_PULL_SEQ_ADVANCE_SCRIPT = core_redis.Script(_PULL_SEQ_ADVANCE)


def _window(raw: list[bytes], cap: int) -> Window:
    complete = bool(raw) and raw[-1] == SENTINEL
    return Window(ids=[int(x) for x in raw[:cap] if x != SENTINEL], complete=complete)


# --- Timelines --------------------------------------------------------------------


def insert(*, user_ids: list[int], tweet_id: int) -> int:
    """Insert one tweet id into the live timelines of ``user_ids``; returns how many took it."""
    return _insert(keys=timeline_keys(user_ids), tweet_id=tweet_id)


def _insert(*, keys: list[str], tweet_id: int) -> int:
    # One script call per FANOUT_SCRIPT_KEYS keys (on a cluster, per hash slot too),
    # all pipelined: one round trip per server, and no call holds a server for long.
    return sum(_INSERT_SCRIPT.per_slot(
        keys=keys, args=[tweet_id, settings.TIMELINE_MAX_ENTRIES, settings.TIMELINE_TRIM_SLACK],
        chunk=settings.FANOUT_SCRIPT_KEYS))


def _combine(*, key: str, user_id: int | None, mode: str, ids: list[int], complete: bool,
             generation: int | None) -> int:
    # The list and the user's generation share the user's hash tag (one slot).
    return _COMBINE_SCRIPT(
        keys=[key, _generation_key(user_id) if user_id is not None else key],
        args=[mode, settings.TIMELINE_MAX_ENTRIES, _ttl_seconds(), "1" if complete else "0",
              "" if generation is None else generation, *ids],
    )


def merge(*, user_id: int, ids: list[int], complete: bool, generation: int, replace: bool = False) -> bool:
    """Merge a rebuilt run of ids into the user's timeline, creating it if absent
    (``replace``: overwrite it). Returns False, writing nothing, if the follow
    graph changed since ``generation``."""
    written = _combine(key=timeline_key(user_id), user_id=user_id, mode="replace" if replace else "rebuild",
                       ids=ids, complete=complete, generation=generation)
    return written >= 0


def backfill(*, user_id: int, ids: list[int], complete: bool, generation: int) -> bool:
    """Add a new followee's ids (all of them, or the newest when not ``complete``)
    to a cached timeline. False if the follow graph moved on since ``generation``."""
    return _combine(key=timeline_key(user_id), user_id=user_id, mode="backfill", ids=ids,
                    complete=complete, generation=generation) != -1


def remove(*, user_id: int, ids: list[int], generation: int) -> None:
    """Drop a former followee's ids from a cached timeline (unless the graph moved on since)."""
    if ids:
        _combine(key=timeline_key(user_id), user_id=user_id, mode="remove", ids=ids, complete=False,
                 generation=generation)


def read(*, user_id: int, prefix: int | None = None) -> HomeState:
    """The cached window of a timeline (refreshing its idle TTL), its generation and cached graph.

    With ``prefix``, only the newest ``prefix`` ids are read: a prefix of a
    gapless list is gapless down to its own last id, so it is a window too.
    """
    return _executed(_read_commands(user_id=user_id, prefix=prefix))


def read_prefetch(round_trip: core_redis.RoundTrip, *, user_id: int, prefix: int | None = None) -> core_redis.Reply:
    """``read`` within a round trip the caller makes; the reply's value is the ``HomeState``
    (None if a command failed: read again)."""
    return round_trip.add_whole(*_read_commands(user_id=user_id, prefix=prefix))


def _read_commands(*, user_id: int, prefix: int | None):
    key = timeline_key(user_id)
    size = _read_size(prefix)

    def queue(pipe) -> None:
        pipe.lrange(key, 0, size)  # one entry more tells whether the sentinel closes the list
        pipe.expire(key, _ttl_seconds())
        pipe.get(_generation_key(user_id))
        pipe.get(_pull_epoch_key())
        pipe.get(_graph_key(user_id))
        pipe.get(_pull_seq_key())
        _queue_mark_live(pipe, [user_id])  # beside the EXPIRE: the timeline lives on, so its owner is marked

    def parse(replies: list) -> HomeState:
        raw, existed, generation, pull_epoch, graph, pull_seq = replies[:6]
        generation, pull_epoch = int(generation or 0), int(pull_epoch or 0)
        return HomeState(
            window=_window(raw, size) if existed else None,
            generation=generation,
            pull_epoch=pull_epoch,
            graph=_parse_graph(graph, generation, pull_epoch),
            pull_seq=int(pull_seq or 0),
        )

    return queue, parse


# A cached graph: ``generation:pull_epoch:width:count|``, then the ``count`` followees
# and then those of them with pulled tweets, sorted, each an unsigned little-endian
# integer of ``width`` bytes (4, or 8 if an id needs it). Four bytes an id where
# decimal text took about seven, read back in one C call however many there are.
_ID_TYPECODES = {4: "I", 8: "Q"}


def _ids_packed(ids: list[int], width: int) -> bytes:
    return _little_endian(array(_ID_TYPECODES[width], ids)).tobytes()


def _ids_unpacked(raw: bytes, width: int) -> array:
    return _little_endian(array(_ID_TYPECODES[width], raw))


def _little_endian(ids: array) -> array:
    """``ids`` between this machine's byte order and the stored one (a swap on a big-endian machine)."""
    if sys.byteorder == "big":
        ids.byteswap()
    return ids


def _parse_graph(raw: bytes | None, generation: int, pull_epoch: int) -> Graph | None:
    if raw is None:
        return None
    head, _, body = raw.partition(b"|")
    tag, _, shape = head.rpartition(b":")  # shape: the count; tag: generation:pull_epoch:width
    if tag not in (f"{generation}:{pull_epoch}:4".encode(), f"{generation}:{pull_epoch}:8".encode()):
        return None  # another generation or epoch (or a layout this code does not write)
    width = int(tag[-1:])
    split = width * int(shape)
    return Graph(followees=set(_ids_unpacked(body[:split], width)), pulled=set(_ids_unpacked(body[split:], width)))


def graph_save(*, user_id: int, generation: int, pull_epoch: int, graph: Graph) -> None:
    """Cache the user's graph as read at ``generation`` and ``pull_epoch`` (both read *before* the query)."""
    followees, pulled = sorted(graph.followees), sorted(graph.pulled)
    width = 4 if max(followees[-1:] + pulled[-1:], default=0) < 1 << 32 else 8
    value = (f"{generation}:{pull_epoch}:{width}:{len(followees)}|".encode()
             + _ids_packed(followees, width) + _ids_packed(pulled, width))
    _redis().set(_graph_key(user_id), value, ex=_ttl_seconds())


def generation(*, user_id: int) -> int:
    return int(_redis().get(_generation_key(user_id)) or 0)


def generation_advance(*, user_id: int, drop_timeline: bool = False) -> int:
    """Move the user's follow generation on (invalidating the cached graph and
    in-flight rebuilds) and, if asked, drop the timeline. Returns the new generation."""
    return _GENERATION_ADVANCE_SCRIPT(
        keys=[timeline_key(user_id), _generation_key(user_id)],
        args=[2 * _ttl_seconds(), "1" if drop_timeline else "0"],
    )


def exists(*, user_id: int) -> bool:
    return bool(_redis().exists(timeline_key(user_id)))


def existing(*, user_ids: list[int]) -> list[int]:
    """Those of ``user_ids`` whose timeline is cached (one round trip)."""
    pipe = _redis().pipeline(transaction=False)
    for uid in user_ids:
        pipe.exists(timeline_key(uid))
    return [uid for uid, found in zip(user_ids, pipe.execute(), strict=True) if found]


def evict(*, user_id: int) -> None:
    """Drop a cached timeline (an operator's or a test's eviction; the next read rebuilds it)."""
    _redis().delete(timeline_key(user_id))


# --- Live timelines ----------------------------------------------------------------
# Which users may have a cached timeline, so that a large fan-out addresses only
# them: most followers of an author are not reading, and each would cost the
# insert script a lookup. One bitmap per period of TIMELINE_INACTIVE_DAYS, a bit
# per user id. A read sets its reader's bit in the current period's, in the same
# round trip as the EXPIRE that keeps the timeline alive; a rebuild sets it before
# it reads PostgreSQL. A timeline outlives its last read or build by at most one
# period, so its owner is marked in the current period or the one before (the next
# one is read too, for a writer whose clock is behind a reader's). Bits are never
# cleared: a stale one costs what every follower cost before, a lookup. A missing
# one would lose deliveries, so the filter is used only once ``index_live`` has
# marked every timeline that was cached before marking began, which it records in
# a flag (lost with the bitmaps if the server is, and then indexed again).


def _period() -> int:
    return int(time.time()) // _ttl_seconds()


def _indexed(flag: bytes | None) -> bool:
    """Whether the flag ``index_live`` sets says every cached timeline is marked, for this period length."""
    return flag is not None and int(flag) == _ttl_seconds()


def _queue_mark_live(pipe, user_ids: list[int]) -> None:
    period = _period()
    key = _live_key(period)
    for uid in user_ids:
        pipe.setbit(key, uid, 1)
    pipe.expireat(key, (period + 3) * _ttl_seconds())  # past the last fan-out that may read it


def mark_live(*, user_ids: list[int]) -> None:
    """Mark ``user_ids`` as having (or about to have) a cached timeline; one round trip."""
    pipe = _redis().pipeline(transaction=False)
    _queue_mark_live(pipe, user_ids)
    pipe.execute()


# Each byte's 8 bits, first bit first, as 8 bytes of 0 or 1: a bitmap becomes a byte per id,
# which a list comprehension indexes faster than it masks bits (4 -> 1 ms for 50,000 ids).
_BIT_BYTES = [bytes((byte >> (7 - i)) & 1 for i in range(8)) for byte in range(256)]


def live_only(*, user_ids: list[int]) -> list[int]:
    """Those of ``user_ids`` who may have a cached timeline: every one of them until
    ``index_live`` has run since the server started. One round trip, reading at most
    eight bytes of each bitmap per user asked about; ids past what was read are kept."""
    limit = 8 * max(len(user_ids), 1)
    period = _period()
    pipe = _redis().pipeline(transaction=False)
    pipe.get(_live_indexed_key())
    for p in (period - 1, period, period + 1):
        pipe.getrange(_live_key(p), 0, limit - 1)
    indexed, *maps = pipe.execute()
    if not _indexed(indexed):
        return user_ids
    size = max(len(m) for m in maps)
    merged = 0
    for m in maps:
        merged |= int.from_bytes(m.ljust(size, b"\0"), "big")
    live = b"".join([_BIT_BYTES[byte] for byte in merged.to_bytes(size, "big")])  # a byte an id: 1 if marked
    known = len(live)
    if size == limit:  # a bitmap longer than read: ids from here on are kept
        return [uid for uid in user_ids if uid >= known or live[uid]]
    return [uid for uid in user_ids if uid < known and live[uid]]


def index_live() -> int | None:
    """Mark the owner of every cached timeline, then record that it is done (the
    fan-out's filter is on from then); None if it was done already, else how many."""
    if _indexed(_redis().get(_live_indexed_key())):
        return None
    pattern = timeline_key(0).replace("{0}", "{*}")
    start = len(pattern) - 2  # where the id begins
    marked, batch = 0, []
    for key in core_redis.scan_iter(pattern, count=5000):
        batch.append(int(key[start:-1]))
        if len(batch) == 5000:
            mark_live(user_ids=batch)
            marked, batch = marked + len(batch), []
    if batch:
        mark_live(user_ids=batch)
    _redis().set(_live_indexed_key(), _ttl_seconds())
    return marked + len(batch)


# --- Celebrity pull -----------------------------------------------------------------


def puller_add(*, author_id: int) -> None:
    """Note that ``author_id`` has pulled tweets; the first time, every cached graph goes stale."""
    _PULLER_ADD_SCRIPT(keys=[_pullers_key(), _pull_epoch_key()], args=[author_id])


def author_insert(*, author_id: int, tweet_id: int) -> int:
    """Insert a pulled tweet into its author's list, if that list is cached."""
    written = _insert(keys=[author_key(author_id)], tweet_id=tweet_id)
    _pull_seq_advance()  # even if the list was not cached: a reader's copy of it lacks the tweet
    return written


def author_merge(*, author_id: int, ids: list[int], complete: bool) -> None:
    """Merge a run of the author's pulled ids, read from PostgreSQL, into their list (creating it)."""
    _combine(key=author_key(author_id), user_id=None, mode="rebuild", ids=ids, complete=complete, generation=None)
    _pull_seq_advance()


def _pull_seq_advance() -> None:
    _PULL_SEQ_ADVANCE_SCRIPT(keys=[_pull_seq_key()], args=[])


# Every web process keeps the pulled lists it read, each with the pull sequence read
# in the reader's first round trip, before the list: every write to a pulled list
# advances the sequence once the list is written, so while a reader's first round
# trip still reads the same sequence, the copy is the list as Redis holds it (or
# newer). A reader of celebrities then has their lists before its second round
# trip, which reads the page's tweets, pulled ones included: two round trips, as
# for anyone. Every celebrity's post changes the sequence for every list.
_known: dict[tuple[str, int], tuple[int, Window]] = {}
_KNOWN_MAX = 4096  # copies kept per process (a few ids each); all dropped when full


def author_known(*, author_ids: list[int], prefix: int | None, seq: int) -> dict[int, Window] | None:
    """This process's copies of the pulled lists of ``author_ids``, as ``author_read`` with
    ``prefix`` would give them now that the pull sequence reads ``seq``; None unless it has all."""
    size = _read_size(prefix)
    known = {}
    for author_id in author_ids:
        copy = _known.get((author_key(author_id), size))
        if copy is None or copy[0] != seq:
            return None
        known[author_id] = copy[1]
    return known


def author_touch(round_trip: core_redis.RoundTrip, *, author_ids: list[int]) -> None:
    """Refresh the idle TTL of pulled lists read from this process's copies, within a round trip."""
    def queue(pipe) -> None:
        for author_id in author_ids:
            pipe.expire(author_key(author_id), _ttl_seconds())

    round_trip.add(queue, lambda replies: None)


def author_read(*, author_ids: list[int], prefix: int | None = None) -> dict[int, Window | None]:
    """The cached pulled lists of ``author_ids`` (None where absent; only the newest
    ``prefix`` ids if given), refreshing their idle TTL."""
    if not author_ids:
        return {}
    return _executed(_author_read_commands(author_ids=author_ids, prefix=prefix))


def author_read_prefetch(round_trip: core_redis.RoundTrip, *, author_ids: list[int],
                         prefix: int | None = None, seq: int | None = None) -> core_redis.Reply:
    """``author_read`` within a round trip the caller makes; the reply's value is its
    dict (None if a command failed: read again). With ``seq``, the pull sequence read
    before this trip, the lists read are kept for ``author_known``."""
    return round_trip.add_whole(*_author_read_commands(author_ids=author_ids, prefix=prefix, seq=seq))


def _read_size(prefix: int | None) -> int:
    return min(prefix or settings.TIMELINE_MAX_ENTRIES, settings.TIMELINE_MAX_ENTRIES)


def _author_read_commands(*, author_ids: list[int], prefix: int | None, seq: int | None = None):
    size = _read_size(prefix)

    def queue(pipe) -> None:
        for author_id in author_ids:
            pipe.lrange(author_key(author_id), 0, size)
            pipe.expire(author_key(author_id), _ttl_seconds())

    def parse(replies: list) -> dict[int, Window | None]:
        read = {author_id: _window(replies[2 * i], size) if replies[2 * i + 1] else None
                for i, author_id in enumerate(author_ids)}
        if seq is not None:
            if len(_known) >= _KNOWN_MAX:
                _known.clear()
            for author_id, window in read.items():
                if window is not None:
                    _known[author_key(author_id), size] = (seq, window)
        return read

    return queue, parse


# --- Fan-out bookkeeping ------------------------------------------------------------


def progress_init(*, tweet_id: int, batches: list[str]) -> bool:
    """Record a fan-out's batches; True if this call did (False: already recorded)."""
    return bool(_PROGRESS_INIT_SCRIPT(keys=[_progress_key(tweet_id)], args=[_ttl_seconds(), *batches]))


def progress_done(*, tweet_id: int, batch: str) -> bool:
    """Mark one batch written; True if it was the last outstanding one."""
    return bool(_PROGRESS_DONE_SCRIPT(keys=[_progress_key(tweet_id)], args=[batch]))


def progress_pending(*, tweet_id: int) -> list[str] | None:
    """The batches of a fan-out still outstanding (None: none recorded, or all done)."""
    batches = _redis().hkeys(_progress_key(tweet_id))
    return [b.decode() for b in batches] or None


def _timings_key(tweet_id: int) -> str:
    return _prefixed(f"fot:{tweet_id}")


def timings_add(*, tweet_id: int, values: dict[str, float], first: dict[str, float],
                last: dict[str, float] | None) -> None:
    """Add one batch's timings to its fan-out's (summed), keeping ``first``'s fields
    from the first batch recorded and ``last``'s if this batch finished the fan-out."""
    key = _timings_key(tweet_id)
    pipe = _redis().pipeline(transaction=False)
    for field, value in values.items():
        pipe.hincrbyfloat(key, field, value)
    for field, value in first.items():
        pipe.hsetnx(key, field, value)
    if last:
        pipe.hset(key, mapping=last)
    pipe.expire(key, 3600)
    pipe.execute()


def timings_read(*, tweet_id: int) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in _redis().hgetall(_timings_key(tweet_id)).items()}


def claim_once(*, name: str, ttl: int = 24 * 3600) -> bool:
    """True the first time ``name`` is claimed (within ``ttl``): makes a side effect happen once."""
    return bool(_redis().set(_prefixed(f"once:{name}"), 1, nx=True, ex=ttl))


# --- Inspection (operators and the benchmark) ---------------------------------------
# Reads that look without touching: no TTL is refreshed and nothing is rebuilt.


def cached_floors(*, user_ids: list[int]) -> dict[int, int]:
    """The oldest id of each of ``user_ids``' cached timelines that does not hold its whole
    range (pages older than it come from PostgreSQL); one round trip."""
    pipe = _redis().pipeline(transaction=False)
    for uid in user_ids:
        pipe.lindex(timeline_key(uid), -1)
    return {uid: int(last) for uid, last in zip(user_ids, pipe.execute(), strict=True)
            if last is not None and last != SENTINEL}


def heads(*, user_ids: list[int], count: int) -> dict[int, list[int]]:
    """The newest ``count`` ids of each of ``user_ids``' cached timelines ([] where none); one round trip."""
    pipe = _redis().pipeline(transaction=False)
    for uid in user_ids:
        pipe.lrange(timeline_key(uid), 0, count - 1)
    return {uid: [int(x) for x in raw if x != SENTINEL]
            for uid, raw in zip(user_ids, pipe.execute(), strict=True)}


@dataclass(frozen=True)
class MemoryUsage:
    """What one user's keys cost in Redis, in bytes (``MEMORY USAGE``, every element counted)."""

    timeline_bytes: int  # 0: not cached
    timeline_entries: int  # the closing sentinel included
    graph_bytes: int  # the cached follow graph
    generation_bytes: int


def memory_usage(*, user_ids: list[int]) -> dict[int, MemoryUsage]:
    """The memory each of ``user_ids``' timeline, graph and generation keys takes; one round trip."""
    pipe = _redis().pipeline(transaction=False)
    for uid in user_ids:
        pipe.memory_usage(timeline_key(uid), samples=0)
        pipe.llen(timeline_key(uid))
        pipe.memory_usage(_graph_key(uid), samples=0)
        pipe.memory_usage(_generation_key(uid), samples=0)
    replies = [x or 0 for x in pipe.execute()]
    return {uid: MemoryUsage(*replies[4 * i:4 * i + 4]) for i, uid in enumerate(user_ids)}


def used_memory() -> int:
    """The bytes the Redis servers holding the timelines use (``used_memory``, summed over a cluster's masters)."""
    return core_redis.used_memory()
