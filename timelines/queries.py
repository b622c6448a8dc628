"""PostgreSQL reads of the timeline app: the truth every cached list is built from and checked against.

Pure reads: the visible tweet ids of a home timeline between two ids, an
author's newest ids, a user's follow graph. The read path, the rebuilds and
the fan-out all ask PostgreSQL through these.
"""
from django.db import connection

from social.models import Follow, User
from tweets.models import Tweet

from . import store

# The visible tweets of everyone the user follows (and the user) between two
# ids: one (author_id, id DESC) index range scan per followee, each stopping
# after `limit` rows, then merged. The cost grows with the number of followees
# and the page size, never with the number of tweets stored (docs/architecture.md
# has the plan). `pushed_only` selects exactly what the cached timeline list
# holds: the followees' pushed tweets, suspended or not, and all of the user's own.
_TIMELINE_IDS_SQL = f"""
SELECT t.id
FROM (
    SELECT f.followee_id AS author_id FROM {Follow._meta.db_table} f
    WHERE f.follower_id = %(user_id)s AND f.state = 'accepted'
      -- a primary-key probe per followee, never a scan of the users; the
      -- cached list keeps suspended authors' tweets (hidden at read), so that
      -- they come back if the author is reinstated
      AND (%(pushed_only)s OR (SELECT u.is_active FROM {User._meta.db_table} u WHERE u.id = f.followee_id))
    UNION ALL SELECT %(user_id)s
) a
CROSS JOIN LATERAL (
    SELECT tw.id FROM {Tweet._meta.db_table} tw
    WHERE tw.author_id = a.author_id AND tw.deleted_at IS NULL
      AND tw.id > %(after)s AND tw.id < %(before)s
      AND (NOT %(pushed_only)s OR tw.pushed OR tw.author_id = %(user_id)s)
    ORDER BY tw.id {{order}}
    LIMIT %(limit)s
) t
ORDER BY t.id {{order}}
LIMIT %(limit)s
"""
_NEWEST_FIRST_SQL = _TIMELINE_IDS_SQL.format(order="DESC")
_OLDEST_FIRST_SQL = _TIMELINE_IDS_SQL.format(order="ASC")

_NO_UPPER_BOUND = (1 << 63) - 1


def timeline_ids_from_db(*, user_id: int, before: int | None, limit: int, after: int = 0,
                         pushed_only: bool = False, oldest_first: bool = False) -> list[int]:
    """Up to ``limit`` visible tweet ids of the user's home timeline strictly between
    ``after`` and ``before``: the newest of them newest first, or the oldest oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            _OLDEST_FIRST_SQL if oldest_first else _NEWEST_FIRST_SQL,
            {"user_id": user_id, "before": before or _NO_UPPER_BOUND, "after": after, "limit": limit,
             "pushed_only": pushed_only},
        )
        return [row[0] for row in cursor.fetchall()]


def author_ids_from_db(*, author_id: int, pushed: bool, limit: int) -> list[int]:
    """The newest ``limit`` live ids among the author's pushed (or pulled) tweets, newest first."""
    return list(
        Tweet.objects.filter(author_id=author_id, pushed=pushed, deleted_at__isnull=True)
        .order_by("-id").values_list("id", flat=True)[:limit]
    )


def graph_from_db(*, user_id: int) -> store.Graph:
    rows = Follow.objects.filter(follower_id=user_id, state=Follow.State.ACCEPTED).values_list(
        "followee_id", "followee__has_pulled_tweets")
    followees = {followee for followee, _ in rows}
    return store.Graph(followees=followees, pulled={followee for followee, pulls in rows if pulls})
