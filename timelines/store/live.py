"""The live-user set: which users may have a cached timeline, so a large fan-out addresses only them.

Most followers of an author are not reading, and each would cost the insert
script a lookup. One bitmap per period of ``TIMELINE_INACTIVE_DAYS``, a bit per
user id (``tl-live:{period}``). A read sets its reader's bit in the current
period's, in the same round trip as the EXPIRE that keeps the timeline alive
(``queue_mark``); a rebuild sets it before it reads PostgreSQL (``mark_live``).
A timeline outlives its last read or build by at most one period, so its owner
is marked in the current period or the one before (the next one is read too, for
a writer whose clock is behind a reader's). Bits are never cleared: a stale one
costs what every follower cost before, a lookup. A missing one would lose
deliveries, so the filter is used only once ``index_live`` has marked every
timeline that was cached before marking began, which it records in a flag
(``tl-live-indexed``; lost with the bitmaps if the server is, and then indexed
again).
"""
import time

from core import redis as core_redis

from . import keys


def _period() -> int:
    return int(time.time()) // keys.ttl_seconds()


def _indexed(flag: bytes | None) -> bool:
    """Whether the flag ``index_live`` sets says every cached timeline is marked, for this period length."""
    return flag is not None and int(flag) == keys.ttl_seconds()


def queue_mark(pipe, user_ids: list[int]) -> None:
    """Queue ``mark_live``'s commands on a pipeline the caller sends."""
    period = _period()
    key = keys.live_key(period)
    for uid in user_ids:
        pipe.setbit(key, uid, 1)
    pipe.expireat(key, (period + 3) * keys.ttl_seconds())  # past the last fan-out that may read it


def mark_live(*, user_ids: list[int]) -> None:
    """Mark ``user_ids`` as having (or about to have) a cached timeline; one round trip."""
    pipe = core_redis.connection().pipeline(transaction=False)
    queue_mark(pipe, user_ids)
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
    pipe = core_redis.connection().pipeline(transaction=False)
    pipe.get(keys.live_indexed_key())
    for p in (period - 1, period, period + 1):
        pipe.getrange(keys.live_key(p), 0, limit - 1)
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
    redis = core_redis.connection()
    if _indexed(redis.get(keys.live_indexed_key())):
        return None
    pattern = keys.timeline_key(0).replace("{0}", "{*}")
    start = len(pattern) - 2  # where the id begins
    marked, batch = 0, []
    for key in core_redis.scan_iter(pattern, count=5000):
        batch.append(int(key[start:-1]))
        if len(batch) == 5000:
            mark_live(user_ids=batch)
            marked, batch = marked + len(batch), []
    if batch:
        mark_live(user_ids=batch)
    redis.set(keys.live_indexed_key(), keys.ttl_seconds())
    return marked + len(batch)
