"""PostgreSQL reads of the timeline app: the truth every cached list is built from and checked against.

Pure reads: the visible tweet ids of a home timeline between two ids, an
author's newest ids, a user's follow graph, a pending fan-out. The read path, the rebuilds and
the fan-out all ask PostgreSQL through these.
"""
from django.db import connections

from core import db
from social.models import Follow, User, accepted_sql
from tweets.models import Tweet, live_sql

from . import store
from .models import PendingFanout

# The visible tweets of everyone the user follows (and the user) between two
# ids: one (author_id, id DESC) index range scan per followee, each stopping
# after `limit` rows, then merged. The cost grows with the number of followees
# and the page size, never with the number of tweets stored (docs/subsystems/read-path.md
# has the plan). `pushed_only` selects exactly what the cached timeline list
# holds: the followees' pushed tweets, suspended or not, and all of the user's own.
_TIMELINE_IDS_SQL = f"""
SELECT t.id
FROM (
    SELECT f.followee_id AS author_id FROM {Follow._meta.db_table} f
    WHERE f.follower_id = %(user_id)s AND {accepted_sql("f")}
      -- a primary-key probe per followee, never a scan of the users; the
      -- cached list keeps suspended authors' tweets (hidden at read), so that
      -- they come back if the author is reinstated
      AND (%(pushed_only)s OR (SELECT u.is_active FROM {User._meta.db_table} u WHERE u.id = f.followee_id))
    UNION ALL SELECT %(user_id)s
) a
CROSS JOIN LATERAL (
    SELECT tw.id FROM {Tweet._meta.db_table} tw
    WHERE tw.author_id = a.author_id AND {live_sql("tw")}
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
                         pushed_only: bool = False, oldest_first: bool = False, using: str = db.PRIMARY) -> list[int]:
    """Up to ``limit`` visible tweet ids of the user's home timeline strictly between
    ``after`` and ``before``: the newest of them newest first, or the oldest oldest first."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            _OLDEST_FIRST_SQL if oldest_first else _NEWEST_FIRST_SQL,
            {"user_id": user_id, "before": before or _NO_UPPER_BOUND, "after": after, "limit": limit,
             "pushed_only": pushed_only},
        )
        return [row[0] for row in cursor.fetchall()]


def author_ids_from_db(*, author_id: int, pushed: bool, limit: int, using: str = db.PRIMARY) -> list[int]:
    """The newest ``limit`` live ids among the author's pushed (or pulled) tweets, newest first."""
    return list(
        Tweet.objects.using(using).live().by_author(author_id).filter(pushed=pushed)
        .order_by("-id").values_list("id", flat=True)[:limit]
    )


def graph_from_db(*, user_id: int, using: str = db.PRIMARY) -> store.Graph:
    rows = Follow.objects.using(using).accepted().filter(follower_id=user_id).values_list(
        "followee_id", "followee__has_pulled_tweets")
    followees = {followee for followee, _ in rows}
    return store.Graph(followees=followees, pulled={followee for followee, pulls in rows if pulls})


# One array rather than a row a follower: 15 ms instead of 25 for 50,000 ids.
_FOLLOWERS_SQL = f"""
SELECT ARRAY(
  SELECT follower_id FROM {Follow._meta.db_table}
  WHERE followee_id = %(author_id)s AND {accepted_sql()} AND follower_id > %(lo)s AND follower_id <= %(hi)s
  ORDER BY follower_id LIMIT %(limit)s
)
"""


def followers_from_db(*, author_id: int, lo: int = 0, hi: int | None = None, limit: int | None = None,
                      using: str = db.PRIMARY) -> list[int]:
    """The author's accepted followers with ids in (lo, hi], in id order, the first ``limit`` of
    them (None: all): one range scan of the ``(followee_id, follower_id)`` index, as one array (a
    plain cursor: a fan-out reads up to the celebrity threshold's worth of ids, and the ORM's rows
    cost more than the scan)."""
    with connections[using].cursor() as cursor:
        cursor.execute(_FOLLOWERS_SQL, {"author_id": author_id, "lo": lo, "limit": limit,
                                        "hi": _NO_UPPER_BOUND if hi is None else hi})
        return cursor.fetchone()[0]


# A fan-out's first question (the worker asks it for every tweet): is it still
# pending, and by whom is the tweet, pushed or pulled, deleted meanwhile?
_PENDING_FANOUT_SQL = f"""
SELECT t.author_id, t.pushed, NOT ({live_sql("t")})
FROM {PendingFanout._meta.db_table} p JOIN {Tweet._meta.db_table} t ON t.id = p.tweet_id
WHERE p.tweet_id = %s
"""


def pending_fanout(*, tweet_id: int) -> tuple[int, bool, bool] | None:
    """``(author_id, pushed, deleted)`` of a tweet whose fan-out is pending; None if it is
    not (delivered already). A plain cursor: the ORM's query building was most of a small
    fan-out's worker time."""
    with connections[db.PRIMARY].cursor() as cursor:
        cursor.execute(_PENDING_FANOUT_SQL, [tweet_id])
        return cursor.fetchone()


def followers_for_fanout(*, author_id: int, tweet_id: int, lo: int = 0, hi: int | None = None,
                         limit: int | None = None) -> list[int]:
    """:func:`followers_from_db` for a tweet's fan-out, on the replica when it already
    shows the tweet. A replica replays commits in order, so one that shows the tweet
    shows every follow committed before it; a follow committed after the tweet is
    covered by that follow's own backfill, which reads the primary after the follow
    commits (docs/scaling.md). A replica that does not show it yet: the primary."""
    def scan(alias: str) -> list[int]:
        if alias != db.PRIMARY and not Tweet.objects.using(alias).filter(id=tweet_id).exists():
            alias = db.PRIMARY
        return followers_from_db(author_id=author_id, lo=lo, hi=hi, limit=limit, using=alias)
    return db.read(scan)
