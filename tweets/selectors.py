"""Reads of tweets: single lookups and the page hydration every timeline goes through."""
from core import redis as core_redis
from social.models import Follow, User

from . import cache, objects


def _shown(tweet_ids: list[int], author_ids: set[int] | None, prefetched: cache.Prefetched | None = None) -> list[dict]:
    """Cached entries of the tweets to be shown, in order: live, by an active author (in ``author_ids``)."""
    entries = cache.get_or_fill_many(tweet_ids, prefetched)
    shown = []
    for tid in tweet_ids:
        entry = entries.get(tid)
        if entry is not None and entry["author"]["active"] and (author_ids is None or entry["author_id"] in author_ids):
            shown.append(entry)
    return shown


def tweets_hydrate(*, tweet_ids: list[int], author_ids: set[int] | None = None,
                   prefetched: cache.Prefetched | None = None) -> list[dict]:
    """Public tweet objects for ``tweet_ids``, in the same order, skipping any not to be shown.

    One MGET for the tweets with their authors, one query for the cache misses
    (which refills the cache): a bounded cost whatever the page size. Deleted tweets and suspended authors are
    skipped, and so are authors not in ``author_ids`` when it is given. ``prefetched``:
    entries already read in a round trip of the caller's (``hydrate_prefetch``), not asked for again.
    """
    return [objects.public(entry) for entry in _shown(tweet_ids, author_ids, prefetched)]


def hydrate_prefetch(round_trip: core_redis.RoundTrip, *, tweet_ids: list[int]) -> core_redis.Reply:
    """Read the cached entries ``tweets_hydrate`` will want for ``tweet_ids`` within a round trip
    the caller makes; the reply's value is its ``prefetched`` (None: they are read then)."""
    return cache.prefetch(round_trip, tweet_ids)


def tweet_visible_to(*, tweet_id: int, viewer: User) -> dict | None:
    """The public tweet object, or ``None`` if it is deleted, suspended or private to ``viewer``."""
    found = _shown([tweet_id], None)
    if not found:
        return None
    entry = found[0]
    author_id = entry["author_id"]
    if entry["author"]["private"] and author_id != viewer.id and not Follow.objects.filter(
        follower=viewer, followee_id=author_id, state=Follow.State.ACCEPTED
    ).exists():
        return None
    return objects.public(entry)
