"""The author cache: each user's summary (``id -> username, display name, active, private``).

Two things read it: the reader's authentication (``CachedUserJWTAuthentication``
checks that the token's user exists and is active without a query), and the
tweet cache, whose entries embed ``author_summary`` so that a page is hydrated
from tweet entries alone, never from here. Reads fill misses with ``SET NX``
and every change overwrites the entry after commit, so a fill made from a row
read before the change can never outlive it; rewriting or dropping entries is
announced (``signals.authors_changed``), which drops the authors' cached
tweets. With Redis unreachable, reads are answered from PostgreSQL alone,
filling nothing.
"""
import logging
from collections.abc import Collection

import orjson
from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core import redis as core_redis

from .metrics import AUTHOR_CACHE_HITS, AUTHOR_CACHE_MISSES
from .models import User

TTL_SECONDS = 24 * 3600
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError)

logger = logging.getLogger(__name__)


def _key(user_id: int) -> str:
    return f"{settings.REDIS_KEY_PREFIX}u:{user_id}"


def author_summary(user: User) -> dict:
    return {
        "user_id": str(user.id),
        "username": user.username,
        "display_name": user.display_name,
        "active": user.is_active,
        "private": user.is_private,
    }


def _encode(summary: dict) -> bytes:
    return orjson.dumps(summary)


def prefetch(round_trip: core_redis.RoundTrip, user_id: int) -> core_redis.Reply:
    """Ask for ``user_id``'s summary within a round trip made by the caller; then
    ``get_or_fill_many([user_id], prefetched=...)`` reads it from the reply."""
    return round_trip.add(lambda pipe: pipe.get(_key(user_id)), lambda replies: replies[0])


def get_or_fill_many(user_ids: list[int], prefetched: core_redis.Reply | None = None) -> dict[int, dict]:
    """Author summaries by id, from the cache, filling misses from PostgreSQL in one query
    (with Redis unreachable: all from PostgreSQL, filling nothing). ``prefetched``: the
    one user's cached value, already asked for (``prefetch``); unless the trip failed."""
    if not user_ids:
        return {}
    found = {}
    if prefetched is not None and prefetched.made and not isinstance(prefetched.value, Exception):
        cached, reachable = [prefetched.value], True
    else:
        try:
            cached = core_redis.mget([_key(uid) for uid in user_ids])
            reachable = True
        except _UNREACHABLE:
            logger.warning("author cache unreachable: reading %d users from PostgreSQL", len(user_ids))
            cached, reachable = [None] * len(user_ids), False
    for uid, value in zip(user_ids, cached, strict=True):
        if value is not None:
            found[uid] = orjson.loads(value)
    misses = [uid for uid in user_ids if uid not in found]
    AUTHOR_CACHE_HITS.inc(len(user_ids) - len(misses))
    if misses:
        AUTHOR_CACHE_MISSES.inc(len(misses))
        fills = {}
        for user in User.objects.filter(id__in=misses).only(
            "id", "username", "display_name", "is_active", "is_private"
        ):
            found[user.id] = fills[user.id] = author_summary(user)
        if reachable and fills:
            pipe = core_redis.connection().pipeline(transaction=False)
            for uid, summary in fills.items():
                pipe.set(_key(uid), _encode(summary), ex=TTL_SECONDS, nx=True)
            try:
                pipe.execute()
            except _UNREACHABLE:
                logger.warning("author cache unreachable: %d users read but not cached", len(fills))
    return found


def refresh(user: User) -> None:
    """Overwrite the cached summary with ``user``'s current fields (call after commit)."""
    refresh_many([user])


def refresh_many(users: list[User]) -> None:
    """``refresh`` for several users, in one round trip."""
    if users:
        pipe = core_redis.connection().pipeline(transaction=False)
        for user in users:
            pipe.set(_key(user.id), _encode(author_summary(user)), ex=TTL_SECONDS)
        pipe.execute()


def evict_many(user_ids: Collection[int]) -> None:
    """Drop the summaries of ``user_ids`` (users deleted: a token naming them is then refused)."""
    if user_ids:
        core_redis.delete([_key(uid) for uid in user_ids])


def evict(user_id: int) -> None:
    evict_many({user_id})
