"""The tweet object cache: ``tweet id -> serialized tweet``, read with one MGET per page.

Entries hold the tweet without its author's profile (authors are hydrated from
the user cache, so a renamed user is never shown under an old name). A deleted
tweet is cached as an empty tombstone, so timelines that still list its id skip
it without asking PostgreSQL again.
"""
import orjson
from django.conf import settings
from django_redis import get_redis_connection

from . import snowflake
from .models import Tweet

TOMBSTONE = b""


def _key(tweet_id: int) -> str:
    return f"{settings.REDIS_KEY_PREFIX}tw:{tweet_id}"


def tweet_to_cached(tweet: Tweet) -> dict:
    return {
        "tweet_id": str(tweet.id),
        "author_id": tweet.author_id,
        "content": tweet.content,
        "created_at": tweet.created_at.isoformat().replace("+00:00", "Z"),
        "timestamp": snowflake.timestamp_ms_of(tweet.id) // 1000,
        "media": [],
        "mentions": list(tweet.mentions),
        "hashtags": list(tweet.hashtags),
    }


def get_many(tweet_ids: list[int]) -> dict[int, dict | None]:
    """Cached tweets by id; a deleted tweet maps to ``None``; a miss is absent from the result."""
    if not tweet_ids:
        return {}
    found = {}
    raw = get_redis_connection("default").mget([_key(tid) for tid in tweet_ids])
    for tid, value in zip(tweet_ids, raw, strict=True):
        if value is None:
            continue
        found[tid] = None if value == TOMBSTONE else orjson.loads(value)
    return found


def fill_many(entries: dict[int, dict | None]) -> None:
    """Cache tweets read from PostgreSQL, without overwriting anything already cached.

    ``SET NX`` lets a tombstone written by a concurrent delete win over a fill
    made from a read that predates the delete.
    """
    if not entries:
        return
    pipe = get_redis_connection("default").pipeline(transaction=False)
    for tid, data in entries.items():
        value = TOMBSTONE if data is None else orjson.dumps(data)
        pipe.set(_key(tid), value, ex=settings.TWEET_CACHE_TTL_SECONDS, nx=True)
    pipe.execute()


def tombstone(tweet_id: int, *, ttl: int | None = None) -> None:
    get_redis_connection("default").set(_key(tweet_id), TOMBSTONE, ex=ttl or settings.TWEET_CACHE_TTL_SECONDS)


def evict(tweet_ids: list[int]) -> None:
    if tweet_ids:
        get_redis_connection("default").delete(*[_key(tid) for tid in tweet_ids])
