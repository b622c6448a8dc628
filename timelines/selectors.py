"""Reads of home timelines: the page a client scrolls, assembled from cache and PostgreSQL.

The cached part of a timeline is the union of the user's pushed timeline and
the pulled lists of the celebrities they follow. Each of these vouches for the
ids at or above its floor (its last id, unless it is complete), so the union
vouches for the ids at or above the *highest* floor; below that, pages come from
PostgreSQL, and since both sides list exactly the visible tweets, the seam has
no gap and no repeat. Tweets are then hydrated and filtered: deleted tweets,
suspended authors and authors the user no longer follows are dropped.
"""
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection

from social.models import Follow, User
from tweets.models import Tweet
from tweets.selectors import tweets_hydrate

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


def _graph(*, user_id: int, state: store.HomeState) -> store.Graph:
    if state.graph is not None:
        return state.graph
    graph = graph_from_db(user_id=user_id)
    store.graph_save(user_id=user_id, generation=state.generation, pull_epoch=state.pull_epoch, graph=graph)
    return graph


@dataclass(frozen=True)
class CachedIds:
    """The cached part of a timeline: ids newest first, all those at or above ``floor``."""

    ids: list[int]
    floor: int | None  # None: the cache holds the whole timeline


def cached_ids(*, user_id: int, state: store.HomeState, graph: store.Graph, prefix: int | None = None) -> CachedIds:
    """Merge the pushed timeline (rebuilt if absent) with the pulled lists of followed celebrities."""
    from .services import author_list_rebuild, timeline_rebuild

    windows = [state.window or timeline_rebuild(user_id=user_id, generation=state.generation)]
    if graph.pulled:
        for author_id, window in store.author_read(author_ids=sorted(graph.pulled), prefix=prefix).items():
            windows.append(window or author_list_rebuild(author_id=author_id))
    floors = [w.floor for w in windows if w.floor is not None]
    floor = max(floors) if floors else None
    if len(windows) == 1:
        ids = windows[0].ids
    else:
        ids = sorted({tid for w in windows for tid in w.ids if floor is None or tid >= floor}, reverse=True)
    return CachedIds(ids=ids, floor=floor)


@dataclass(frozen=True)
class TimelinePage:
    tweets: list[dict]
    next_cursor: str | None
    prev_cursor: str | None


class _Timeline:
    """One read of a user's timeline: the cached ids, and PostgreSQL past them."""

    def __init__(self, user_id: int, prefix: int | None = None):
        """``prefix``: read only that many of the newest cached ids of each list (enough for a first page)."""
        self.user_id = user_id
        state = store.read(user_id=user_id, prefix=prefix)
        graph = _graph(user_id=user_id, state=state)
        self.authors = graph.followees | {user_id}
        self.cached = cached_ids(user_id=user_id, state=state, graph=graph, prefix=prefix)

    def _hydrated(self, id_chunks: Iterator[list[int]]) -> Iterator[dict]:
        for chunk in id_chunks:
            yield from tweets_hydrate(tweet_ids=chunk, author_ids=self.authors)

    def older_than(self, cursor: int | None, want: int) -> Iterator[dict]:
        """Visible tweets older than ``cursor``, newest first."""
        return self._hydrated(self._ids_older_than(cursor, want))

    def newer_than(self, since: int, want: int) -> Iterator[dict]:
        """Visible tweets newer than ``since``, oldest first."""
        return self._hydrated(self._ids_newer_than(since, want))

    def _ids_older_than(self, cursor: int | None, want: int) -> Iterator[list[int]]:
        ids = [tid for tid in self.cached.ids if cursor is None or tid < cursor]
        # Chunks grow when deleted tweets thin a page out, keeping round trips few.
        yield from _chunked(ids, want)
        floor = self.cached.floor
        if floor is None:
            return
        before = floor if cursor is None else min(cursor, floor)
        for size in _sizes(want):
            older = timeline_ids_from_db(user_id=self.user_id, before=before, limit=size)
            if older:
                yield older
            if len(older) < size:
                return
            before = older[-1]

    def _ids_newer_than(self, since: int, want: int) -> Iterator[list[int]]:
        floor = self.cached.floor
        if floor is not None and since < floor:
            # The oldest of them lie below the cached range: PostgreSQL first.
            after = since
            for size in _sizes(want):
                newer = timeline_ids_from_db(user_id=self.user_id, after=after, before=floor, limit=size,
                                             oldest_first=True)
                if newer:
                    yield newer
                if len(newer) < size:
                    break
                after = newer[-1]
        yield from _chunked([tid for tid in reversed(self.cached.ids) if tid > since], want)


def _sizes(first: int) -> Iterator[int]:
    size = first
    while True:
        yield size
        size = min(size * 2, 1000)


def _chunked(ids: list[int], first: int) -> Iterator[list[int]]:
    start = 0
    for size in _sizes(first):
        if start >= len(ids):
            return
        yield ids[start : start + size]
        start += size


def _take(tweets: Iterator[dict], n: int) -> list[dict]:
    taken = []
    for tweet in tweets:
        taken.append(tweet)
        if len(taken) == n:
            break
    return taken


def timeline_page_for_user(*, user_id: int, limit: int, cursor: int | None = None,
                           since: int | None = None) -> TimelinePage:
    """One page of the home timeline, newest first.

    With ``cursor``: the newest ``limit`` tweets older than it. With ``since``:
    the ``limit`` tweets just newer than it (pull-to-refresh; ask again with
    ``since=prev_cursor`` for the next ones, without gaps). ``next_cursor`` is
    null exactly when nothing older than the page exists.
    """
    # The first page, by far the most read, needs only the head of each list;
    # twice the page leaves room for tweets hidden at read before PostgreSQL is asked.
    first_page = cursor is None and since is None
    timeline = _Timeline(user_id, prefix=2 * limit + 20 if first_page else None)
    if since is None:
        tweets = _take(timeline.older_than(cursor, limit + 1), limit + 1)
        has_older = len(tweets) > limit
        tweets = tweets[:limit]
    else:
        tweets = _take(timeline.newer_than(since, limit), limit)[::-1]
        oldest = int(tweets[-1]["tweet_id"]) if tweets else since + 1
        has_older = bool(_take(timeline.older_than(oldest, 1), 1))
    if tweets:
        prev_cursor = tweets[0]["tweet_id"]
    else:
        prev_cursor = str(since) if since is not None else None
    return TimelinePage(
        tweets=tweets,
        next_cursor=tweets[-1]["tweet_id"] if tweets and has_older else None,
        prev_cursor=prev_cursor,
    )
