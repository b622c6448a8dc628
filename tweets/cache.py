"""The tweet object cache: ``tweet id -> TweetEntry`` (``objects.TweetEntry.pack``), read with one MGET per chunk
of a page (on a Redis Cluster, one MGET per hash slot, pipelined: a round trip per node).

An entry carries its author's summary (``objects.Author``); when that
changes, ``evict_authored_by`` drops the author's entries. A deleted tweet is
cached as an empty tombstone, so timelines that still list its id skip it
without asking PostgreSQL again. A read fills its misses from PostgreSQL
(``get_or_fill_many``, the only fill on a miss); posting warms the new tweet's
entry and deleting writes the tombstone. With Redis unreachable, reads are
answered from PostgreSQL alone, filling nothing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings

from core import db
from core import redis as core_redis

from .metrics import TWEET_CACHE_HITS, TWEET_CACHE_MISSES
from .models import Tweet
from .objects import TweetEntry, unpacked

TOMBSTONE = b""
_UNREACHABLE = core_redis.UNREACHABLE

logger = logging.getLogger(__name__)


def key_prefix() -> str:
    """What a tweet's key is before its id."""
    return f"{settings.REDIS_KEY_PREFIX}tw:"


def _key(tweet_id: int) -> str:
    return f"{key_prefix()}{tweet_id}"


@dataclass(frozen=True)
class Prefetched:
    """Cached entries read ahead in a caller's round trip (``prefetch``), as ``_get_many`` gives them."""

    asked: frozenset[int]
    found: dict[int, TweetEntry | None]
    older: list[int]

    @classmethod
    def of(cls, values: dict[int, bytes | None]) -> Prefetched:
        """The entries of cached values read elsewhere: by tweet id, the value (None: not cached)."""
        return cls(frozenset(values), *_parsed(list(values), list(values.values())))

    def joined(self, other: Prefetched | None) -> Prefetched:
        """These entries and ``other``'s (read for other ids)."""
        if other is None:
            return self
        return Prefetched(self.asked | other.asked, {**self.found, **other.found}, self.older + other.older)


def prefetch(round_trip: core_redis.RoundTrip, tweet_ids: list[int]) -> core_redis.Reply[Prefetched | None]:
    """Ask for the cached entries of ``tweet_ids`` within a round trip the caller makes; the
    reply's value is a ``Prefetched`` for ``get_or_fill_many`` (None if a command failed)."""
    keys = [_key(tid) for tid in tweet_ids]
    cluster = core_redis.is_cluster()

    def queue(pipe) -> None:
        if cluster:  # a cluster's pipeline refuses MGET: a GET each, to its key's node, within the trip
            for key in keys:
                pipe.get(key)
        else:
            pipe.mget(keys)

    def parse(replies: list) -> Prefetched:
        return Prefetched(frozenset(tweet_ids), *_parsed(tweet_ids, replies if cluster else replies[0]))

    return round_trip.add_whole(queue, parse)


def _get_many(tweet_ids: list[int], prefetched: Prefetched | None = None,
              ) -> tuple[dict[int, TweetEntry | None], list[int]]:
    """Cached entries by id (a deleted tweet maps to ``None``; a miss is absent), and the ids
    whose entry is in an older layout (misses too, to be dropped before they are filled).
    Ids ``prefetched`` asked about are taken from it, the others read with an MGET."""
    rest = [tid for tid in tweet_ids if prefetched is None or tid not in prefetched.asked]
    found, older = _parsed(rest, core_redis.mget([_key(tid) for tid in rest])) if rest else ({}, [])
    if prefetched is not None:
        wanted = set(tweet_ids)
        found.update((tid, entry) for tid, entry in prefetched.found.items() if tid in wanted)
        older += [tid for tid in prefetched.older if tid in wanted]
    return found, older


def _parsed(tweet_ids: list[int], raw: list) -> tuple[dict[int, TweetEntry | None], list[int]]:
    found: dict[int, TweetEntry | None] = {}
    older: list[int] = []
    for tid, value in zip(tweet_ids, raw, strict=True):
        if value is None:
            continue
        if value == TOMBSTONE:
            found[tid] = None
            continue
        entry = unpacked(tid, value)
        if entry is not None:
            found[tid] = entry
        else:
            older.append(tid)
    return found, older


def get_or_fill_many(tweet_ids: list[int], prefetched: Prefetched | None = None) -> dict[int, TweetEntry | None]:
    """Cached entries by id, reading the misses from PostgreSQL in one query and caching them.

    A deleted tweet maps to ``None`` (and is cached as a tombstone); an unknown
    id is absent and not cached at all (it may be a tweet still being committed).
    With Redis unreachable, every id is read from PostgreSQL and nothing is cached;
    with the primary unreachable, from the replica when one is set
    (``core.db.primary_or_replica``).
    ``prefetched``: entries already read in the caller's round trip (``prefetch``).
    """
    try:
        entries, older = _get_many(tweet_ids, prefetched)
        redis_up = True
    except _UNREACHABLE:
        logger.warning("tweet cache unreachable: reading %d tweets from PostgreSQL", len(tweet_ids))
        entries, older, redis_up = {}, [], False
    misses = [tid for tid in tweet_ids if tid not in entries]
    TWEET_CACHE_HITS.inc(len(tweet_ids) - len(misses))
    if misses:
        TWEET_CACHE_MISSES.inc(len(misses))
        try:
            # Deleted before PostgreSQL is read (so a tombstone written meanwhile stands),
            # or the fill's SET NX would never replace them.
            evict(older)
        except _UNREACHABLE:
            redis_up = False
        fetched = db.primary_or_replica(lambda alias: {
            tweet.id: None if tweet.is_deleted else TweetEntry.of(tweet)
            for tweet in Tweet.objects.using(alias).filter(id__in=misses).select_related("author")})
        if redis_up:
            try:
                fill_many(fetched)
            except _UNREACHABLE:
                logger.warning("tweet cache unreachable: %d tweets read but not cached", len(fetched))
        entries.update(fetched)
    return entries


def fill_many(entries: dict[int, TweetEntry | None]) -> None:
    """Cache tweets read from PostgreSQL, without overwriting anything already cached.

    ``SET NX`` lets a tombstone written by a concurrent delete win over a fill
    made from a read that predates the delete.
    """
    if not entries:
        return
    pipe = core_redis.connection().pipeline(transaction=False)
    for tid, data in entries.items():
        value = TOMBSTONE if data is None else data.pack()
        pipe.set(_key(tid), value, ex=settings.TWEET_CACHE_TTL_SECONDS, nx=True)
    pipe.execute()


def tombstone(tweet_id: int, *, ttl: int | None = None) -> None:
    core_redis.connection().set(_key(tweet_id), TOMBSTONE, ex=ttl or settings.TWEET_CACHE_TTL_SECONDS)


def evict(tweet_ids: list[int]) -> None:
    if tweet_ids:
        core_redis.delete([_key(tid) for tid in tweet_ids])


_EVICT_CHUNK = 5000


def evict_authored_by(author_ids: set[int]) -> int:
    """Drop the cached entries of every tweet by ``author_ids`` (their summary changed:
    the next read fills them again); returns how many ids were dropped."""
    if not author_ids:
        return 0
    ids = Tweet.objects.filter(author_id__in=author_ids).values_list("id", flat=True)
    return _evict_in_chunks(ids.iterator(chunk_size=_EVICT_CHUNK))


def _evict_in_chunks(tweet_ids) -> int:
    chunk, evicted = [], 0
    for tid in tweet_ids:
        chunk.append(tid)
        if len(chunk) == _EVICT_CHUNK:
            evict(chunk)
            evicted, chunk = evicted + len(chunk), []
    evict(chunk)
    return evicted + len(chunk)
