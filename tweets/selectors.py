"""Reads of tweets: single lookups, an author's own tweets and the page hydration every timeline goes through.

Who may see what is ``models.TweetQuerySet``'s (``live``, ``visible_to``) and, for an
entry already read from the cache, ``social.selectors.may_see_account``: the same rule.
"""
from core import redis as core_redis
from social.selectors import may_see_account

from . import cache, snowflake
from .models import Tweet
from .objects import TweetEntry


def _shown(tweet_ids: list[int], author_ids: set[int] | None,
           prefetched: cache.Prefetched | None = None) -> list[TweetEntry]:
    """Entries of the tweets to be shown, in order: live, by an active author (in ``author_ids``)."""
    entries = cache.get_or_fill_many(tweet_ids, prefetched)
    shown = []
    for tid in tweet_ids:
        entry = entries.get(tid)
        if entry is not None and entry.author.active and (author_ids is None or entry.author.user_id in author_ids):
            shown.append(entry)
    return shown


def tweets_hydrate(*, tweet_ids: list[int], author_ids: set[int] | None = None,
                   prefetched: cache.Prefetched | None = None) -> list[TweetEntry]:
    """Entries for ``tweet_ids``, in the same order, skipping any not to be shown.

    One MGET for the tweets with their authors, one query for the cache misses
    (which refills the cache): a bounded cost whatever the page size. Deleted tweets and suspended authors are
    skipped, and so are authors not in ``author_ids`` when it is given. ``prefetched``:
    entries already read in a round trip of the caller's (``hydrate_prefetch``), not asked for again.
    """
    return _shown(tweet_ids, author_ids, prefetched)


def hydrate_prefetch(round_trip: core_redis.RoundTrip, *, tweet_ids: list[int]
                     ) -> core_redis.Reply[cache.Prefetched | None]:
    """Read the cached entries ``tweets_hydrate`` will want for ``tweet_ids`` within a round trip
    the caller makes; the reply's value is its ``prefetched`` (None: they are read then)."""
    return cache.prefetch(round_trip, tweet_ids)


def hydrate_key_prefix() -> str:
    """The prefix of the keys ``tweets_hydrate`` reads (a key is it and a tweet id), for a reader of
    the cached entries beside other keys (``hydrate_prefetched`` then takes what it read)."""
    return cache.key_prefix()


def hydrate_prefetched(values: dict[int, bytes | None]) -> cache.Prefetched:
    """The ``prefetched`` of ``tweets_hydrate`` from cached values read elsewhere, by tweet id."""
    return cache.Prefetched.of(values)


def tweet_shown(*, tweet_id: int) -> TweetEntry | None:
    """The tweet's entry, or ``None`` if it is deleted or its author suspended, whoever
    asks (a moderator's view: private accounts' tweets included)."""
    found = _shown([tweet_id], None)
    return found[0] if found else None


def tweet_visible_to(*, tweet_id: int, viewer_id: int) -> TweetEntry | None:
    """The tweet's entry, or ``None`` if it is deleted, suspended or private to ``viewer_id``."""
    entry = tweet_shown(tweet_id=tweet_id)
    if entry is None:
        return None
    author = entry.author
    if not may_see_account(viewer_id=viewer_id, account_id=author.user_id, private=author.private):
        return None
    return entry


def statuses_count(*, author_id: int) -> int:
    """How many live tweets the author has."""
    return Tweet.objects.live().by_author(author_id).count()


def author_tweets_page(*, viewer_id: int, author_id: int, limit: int, max_id: int | None = None,
                       since_id: int | None = None, min_id: int | None = None) -> list[TweetEntry]:
    """The author's own tweets that ``viewer_id`` may see, newest first: those older than
    ``max_id`` and newer than ``since_id``, the newest ``limit`` of them, or with ``min_id``
    the ``limit`` just newer than it (a page without a gap)."""
    tweets = Tweet.objects.visible_to(viewer_id).by_author(author_id)
    if max_id is not None:
        tweets = tweets.filter(id__lt=max_id)
    if since_id is not None:
        tweets = tweets.filter(id__gt=since_id)
    if min_id is not None:
        ids = list(tweets.filter(id__gt=min_id).order_by("id").values_list("id", flat=True)[:limit])[::-1]
    else:
        ids = list(tweets.order_by("-id").values_list("id", flat=True)[:limit])
    return tweets_hydrate(tweet_ids=ids)


def posts_count() -> int:
    """How many live tweets there are (the instance's usage, NodeInfo's ``localPosts``)."""
    return Tweet.objects.live().count()


def authors_since(*, since_ms: int) -> int:
    """How many accounts posted a live tweet since unix millisecond ``since_ms``: the id
    range (Snowflake ids grow with time) walks the primary key, not the whole table."""
    return (Tweet.objects.live().filter(id__gte=snowflake.lowest_id_at(since_ms))
            .values("author_id").distinct().count())
