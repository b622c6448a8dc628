"""Reads of tweets: single lookups and the page hydration every timeline goes through."""
from social import cache as author_cache
from social.models import Follow, User

from . import cache, objects


def _shown(tweet_ids: list[int], author_ids: set[int] | None) -> list[tuple[dict, dict]]:
    """(cached tweet, author summary) pairs for the ids to be shown, in order."""
    entries = cache.get_or_fill_many(tweet_ids)
    if author_ids is not None:
        entries = {tid: e for tid, e in entries.items() if e is not None and e["author_id"] in author_ids}
    authors = author_cache.get_or_fill_many(list({e["author_id"] for e in entries.values() if e is not None}))
    shown = []
    for tid in tweet_ids:
        entry = entries.get(tid)
        author = authors.get(entry["author_id"]) if entry else None
        if author is not None and author["active"]:
            shown.append((entry, author))
    return shown


def tweets_hydrate(*, tweet_ids: list[int], author_ids: set[int] | None = None) -> list[dict]:
    """Public tweet objects for ``tweet_ids``, in the same order, skipping any not to be shown.

    One MGET for the tweets, one query for the cache misses (which refills the
    cache), one MGET (plus one query for its misses) for the authors: a bounded
    cost whatever the page size. Deleted tweets and suspended authors are
    skipped, and so are authors not in ``author_ids`` when it is given.
    """
    return [objects.public(entry, author) for entry, author in _shown(tweet_ids, author_ids)]


def tweet_visible_to(*, tweet_id: int, viewer: User) -> dict | None:
    """The public tweet object, or ``None`` if it is deleted, suspended or private to ``viewer``."""
    found = _shown([tweet_id], None)
    if not found:
        return None
    entry, author = found[0]
    author_id = entry["author_id"]
    if author["private"] and author_id != viewer.id and not Follow.objects.filter(
        follower=viewer, followee_id=author_id, state=Follow.State.ACCEPTED
    ).exists():
        return None
    return objects.public(entry, author)
