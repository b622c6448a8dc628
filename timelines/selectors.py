"""Reads of home timelines: the page a client scrolls, assembled from cache and PostgreSQL."""
from dataclasses import dataclass

from django.db import connection

from social.models import Follow, User
from tweets.models import Tweet
from tweets.selectors import tweets_hydrate

from . import store

# Newest tweets of everyone the user follows (and the user), below an optional
# id: one (author_id, id DESC) index range scan per followee, each stopping after
# `limit` rows, merged. The cost grows with the number of followees and the page,
# never with the number of tweets stored.
_TIMELINE_IDS_SQL = f"""
SELECT t.id
FROM (
    SELECT f.followee_id AS author_id FROM {Follow._meta.db_table} f
    WHERE f.follower_id = %(user_id)s AND f.state = 'accepted'
    UNION ALL SELECT %(user_id)s
) a
JOIN {User._meta.db_table} u ON u.id = a.author_id AND u.is_active
CROSS JOIN LATERAL (
    SELECT tw.id FROM {Tweet._meta.db_table} tw
    WHERE tw.author_id = a.author_id AND tw.deleted_at IS NULL AND tw.id < %(before)s
    ORDER BY tw.id DESC
    LIMIT %(limit)s
) t
ORDER BY t.id DESC
LIMIT %(limit)s
"""

_NO_UPPER_BOUND = (1 << 63) - 1


def timeline_ids_from_db(*, user_id: int, before: int | None, limit: int) -> list[int]:
    """The newest ``limit`` visible tweet ids of the user's home timeline older than ``before``."""
    with connection.cursor() as cursor:
        cursor.execute(
            _TIMELINE_IDS_SQL,
            {"user_id": user_id, "before": before or _NO_UPPER_BOUND, "limit": limit},
        )
        return [row[0] for row in cursor.fetchall()]


@dataclass(frozen=True)
class TimelinePage:
    tweets: list[dict]
    next_cursor: str | None
    prev_cursor: str | None


def _followees(*, user_id: int, state: store.HomeState) -> set[int]:
    if state.followees is not None:
        return state.followees
    followees = set(Follow.objects.filter(follower_id=user_id, state=Follow.State.ACCEPTED)
                    .values_list("followee_id", flat=True))
    store.followees_save(user_id=user_id, generation=state.generation, followee_ids=followees)
    return followees


def timeline_page_for_user(*, user_id: int, limit: int, cursor: int | None = None) -> TimelinePage:
    """One page of the home timeline, newest first, older than ``cursor`` if given.

    Ids come from the cached window (rebuilt if absent) and, past its end,
    from PostgreSQL; one extra tweet is fetched to know whether a next page
    exists. Tweets of authors the user no longer follows are dropped here, so an
    unfollow never has to touch the list.
    """
    from .services import timeline_rebuild

    state = store.read(user_id=user_id)
    window = state.window or timeline_rebuild(user_id=user_id, generation=state.generation)
    authors = _followees(user_id=user_id, state=state) | {user_id}
    want = limit + 1
    candidates = [tid for tid in window.ids if cursor is None or tid < cursor]
    tweets: list[dict] = []
    start, chunk = 0, want
    while len(tweets) < want and start < len(candidates):
        # Grow the chunk when deleted tweets thin a page out, keeping round trips few.
        chunk = max(want - len(tweets), chunk * 2 if start else chunk)
        tweets.extend(tweets_hydrate(tweet_ids=candidates[start : start + chunk], author_ids=authors))
        start += chunk
    if not window.complete:
        # Past the cached range, PostgreSQL has the rest.
        bounds = [b for b in (cursor, window.ids[-1] if window.ids else None) if b is not None]
        before = min(bounds) if bounds else None
        while len(tweets) < want:
            need = want - len(tweets)
            older = timeline_ids_from_db(user_id=user_id, before=before, limit=need)
            tweets.extend(tweets_hydrate(tweet_ids=older, author_ids=authors))
            if len(older) < need:
                break
            before = older[-1]
    has_more = len(tweets) > limit
    tweets = tweets[:limit]
    return TimelinePage(
        tweets=tweets,
        next_cursor=tweets[-1]["tweet_id"] if has_more else None,
        prev_cursor=tweets[0]["tweet_id"] if tweets else None,
    )
