"""Reads of home timelines: ``timeline_page_for_user`` (and ``timeline_prefetch``, its first
Redis reads queued in the reader's own round trip) answers the page a client scrolls.

What a page guarantees: strictly newest first, no duplicates, every visible tweet
(not deleted, author active and followed, or the reader's own) exactly once across
pages, with no gap at the seam between the cache and PostgreSQL: the cached lists
(the reader's pushed timeline and the followed celebrities' pulled lists) vouch
together for the ids at or above the highest of their floors, and PostgreSQL
answers below it. The same page comes back whatever Redis holds or lost; with
Redis unreachable (or skipped by its breaker) the whole page is PostgreSQL's.

A read never changes what a timeline holds, but it does the store's named
bookkeeping: reading a list or a pulled list refreshes its idle TTL, and the
reader is marked live in the same round trip (a read is what keeps a timeline
alive); a list or graph missing from Redis is filled through ``rebuilds``.
Pages past the cache read the replica when one is set, once it has replayed
everything the primary had committed when the page began (``core.db``).
"""
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace

from core import db
from core import redis as core_redis
from tweets.cache import Prefetched
from tweets.objects import TweetEntry
from tweets.selectors import hydrate_key_prefix, hydrate_prefetch, hydrate_prefetched, tweets_hydrate

from . import rebuilds, store
from .metrics import PAGES, POSTGRES_PAGES
from .queries import graph_from_db, timeline_ids_from_db

logger = logging.getLogger(__name__)


def _graph(*, user_id: int, state: store.HomeState) -> store.Graph:
    return state.graph if state.graph is not None else rebuilds.graph_rebuild(user_id=user_id, state=state)


@dataclass(frozen=True)
class CachedIds:
    """The cached part of a timeline: ids newest first, all those at or above ``floor``."""

    ids: list[int]
    floor: int | None  # None: the cache holds the whole timeline
    tweets: Prefetched | None = None  # tweet cache entries read along with the pulled lists


# Nothing cached: every id lies below this floor, so all of them come from PostgreSQL.
_NOTHING_CACHED = CachedIds(ids=[], floor=(1 << 63) - 1)


def cached_ids(*, user_id: int, state: store.HomeState, graph: store.Graph, prefix: int | None = None,
               ahead: int = 0) -> CachedIds:
    """Merge the pushed timeline (rebuilt if absent) with the pulled lists of followed celebrities.

    ``ahead``: have the cached entries of the newest ``ahead`` ids at hand for the page's
    hydration. The first round trip may have read them (``state.head_values``, pulled
    ones included); what it did not (on a Redis Cluster, all of them) is read in the one
    more this makes for the pulled lists: with this process's copies of them
    (``store.author_known``) it is only made for those entries, or when the copies'
    lists are due to have their idle TTL refreshed.
    """
    head = hydrate_prefetched(state.head_values) if state.head_values is not None else None
    pushed = state.window or rebuilds.timeline_rebuild(user_id=user_id, generation=state.generation)
    if not graph.pulled:
        return replace(_merged([pushed]), tweets=head)
    authors = sorted(graph.pulled)
    known = store.author_known(author_ids=authors, prefix=prefix, seq=state.pull_seq)
    if known is not None:
        merged = _merged([pushed, *known.values()])
        if not ahead:
            return merged  # deeper pages: no round trip at all
        due = store.touch_due(author_ids=authors)
        wanted = _not_read(merged.ids[:ahead], head)
        if not due and not wanted:
            return replace(merged, tweets=head)
    trip = core_redis.RoundTrip()
    if known is None:
        lists = store.author_read_prefetch(trip, author_ids=authors, prefix=prefix, seq=state.pull_seq)
        wanted = _not_read(pushed.ids[:ahead], head)
    elif due:
        store.author_touch(trip, author_ids=due)
    entries = hydrate_prefetch(trip, tweet_ids=wanted) if wanted else None
    trip.execute()
    if known is None:
        read = lists.value if lists.value is not None else store.author_read(author_ids=authors, prefix=prefix)
        merged = _merged([pushed] + [window or rebuilds.author_list_rebuild(author_id=author_id)
                                     for author_id, window in read.items()])
    read_now = entries.value if entries is not None else None
    return replace(merged, tweets=head.joined(read_now) if head is not None else read_now)


def _not_read(tweet_ids: list[int], head: Prefetched | None) -> list[int]:
    """Those of ``tweet_ids`` whose entries the first round trip did not read."""
    return tweet_ids if head is None else [tid for tid in tweet_ids if tid not in head.asked]


def _merged(windows: list[store.Window]) -> CachedIds:
    """The union of ``windows``, down to the highest floor (each vouches only down to its own)."""
    floors = [w.floor for w in windows if w.floor is not None]
    floor = max(floors) if floors else None
    if len(windows) == 1:
        ids = windows[0].ids
    else:
        ids = sorted({tid for w in windows for tid in w.ids if floor is None or tid >= floor}, reverse=True)
    return CachedIds(ids=ids, floor=floor)


@dataclass(frozen=True)
class TimelinePage:
    tweets: list[TweetEntry]
    next_cursor: str | None
    prev_cursor: str | None


class _Timeline:
    """One read of a user's timeline: the cached ids, and PostgreSQL past them."""

    def __init__(self, user_id: int, prefix: int | None = None, state: store.HomeState | None = None,
                 ahead: int = 0):
        """``prefix``: read only that many of the newest cached ids of each list (enough for a first page);
        ``state``: the cached state, already read with that prefix; ``ahead``: see ``cached_ids``."""
        self.user_id = user_id
        self.read_postgres = False  # whether any ids came from PostgreSQL past the cache
        self.database = db.PRIMARY  # where those come from, chosen at the first
        try:
            if state is None:
                state = store.read(user_id=user_id, prefix=prefix)
            graph = _graph(user_id=user_id, state=state)
            self.cached = cached_ids(user_id=user_id, state=state, graph=graph, prefix=prefix, ahead=ahead)
        except core_redis.UNREACHABLE:
            logger.warning("timeline cache unreachable: serving user %s from PostgreSQL", user_id)
            graph, self.cached = graph_from_db(user_id=user_id), _NOTHING_CACHED
        self.authors = graph.followees | {user_id}

    def _ids_from_db(self, **kwargs) -> list[int]:
        """Ids past the cache: on the replica once it has replayed all the primary had
        committed when the page began (the user's own follow a moment ago included)."""
        if not self.read_postgres:
            self.read_postgres = True
            self.database = db.replica_or_primary(caught_up=True)
        self.database, ids = db.read_on(
            self.database, lambda alias: timeline_ids_from_db(user_id=self.user_id, using=alias, **kwargs))
        return ids

    def _hydrated(self, id_chunks: Iterator[list[int]]) -> Iterator[TweetEntry]:
        for chunk in id_chunks:
            yield from tweets_hydrate(tweet_ids=chunk, author_ids=self.authors, prefetched=self.cached.tweets)

    def older_than(self, cursor: int | None, want: int) -> Iterator[TweetEntry]:
        """Visible tweets older than ``cursor``, newest first."""
        return self._hydrated(self._ids_older_than(cursor, want))

    def newer_than(self, since: int, want: int) -> Iterator[TweetEntry]:
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
            older = self._ids_from_db(before=before, limit=size)
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
                newer = self._ids_from_db(after=after, before=floor, limit=size, oldest_first=True)
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


def _take(tweets: Iterator[TweetEntry], n: int) -> list[TweetEntry]:
    taken = []
    for tweet in tweets:
        taken.append(tweet)
        if len(taken) == n:
            break
    return taken


def _while(tweets: Iterator[TweetEntry], keep) -> Iterator[TweetEntry]:
    """``tweets`` (in id order) up to the first whose id ``keep`` refuses."""
    for tweet in tweets:
        if not keep(tweet.tweet_id):
            return
        yield tweet


def _prefix(*, limit: int, cursor: int | None, since: int | None) -> int | None:
    # The first page, by far the most read, needs only the head of each list;
    # twice the page leaves room for tweets hidden at read before PostgreSQL is asked.
    return 2 * limit + 20 if cursor is None and since is None else None


def timeline_prefetch(round_trip: core_redis.RoundTrip, *, user_id: int, limit: int, cursor: int | None = None,
                      since: int | None = None) -> core_redis.Reply[store.HomeState | None]:
    """Ask for the cached state ``timeline_page_for_user`` starts from, with the same arguments,
    within a round trip the caller makes (with the reader's authentication and rate limit)."""
    first_page = cursor is None and since is None
    return store.read_prefetch(
        round_trip, user_id=user_id, prefix=_prefix(limit=limit, cursor=cursor, since=since),
        head_values=store.HeadValues(key_prefix=hydrate_key_prefix(), count=limit + 1) if first_page else None)


def timeline_page_for_user(*, user_id: int, limit: int, cursor: int | None = None, since: int | None = None,
                           after: int | None = None, prefetched: core_redis.Reply[store.HomeState | None] | None = None
                           ) -> TimelinePage:
    """One page of the home timeline, newest first.

    With ``cursor``: the newest ``limit`` tweets older than it. With ``since``:
    the ``limit`` tweets just newer than it (pull-to-refresh; ask again with
    ``since=prev_cursor`` for the next ones, without gaps), and older than
    ``cursor`` if that is given too. With ``after`` (not with ``since``): only
    tweets newer than it, the newest ``limit`` of them (Mastodon's ``since_id``).
    ``next_cursor`` is null exactly when nothing older than the page exists
    (within ``after``). ``prefetched``: ``timeline_prefetch``'s reply for the
    same arguments, if the trip was made.
    """
    if since is not None and after is not None:
        raise ValueError("since and after are two ways of reading newer tweets: give one")
    first_page = cursor is None and since is None
    timeline = _Timeline(user_id, prefix=_prefix(limit=limit, cursor=cursor, since=since),
                         state=prefetched.value if prefetched is not None else None,
                         ahead=limit + 1 if first_page else 0)
    if since is None:
        older = timeline.older_than(cursor, limit + 1)
        if after is not None:
            older = _while(older, lambda tweet_id: tweet_id > after)
        tweets = _take(older, limit + 1)
        has_older = len(tweets) > limit
        tweets = tweets[:limit]
    else:
        newer = timeline.newer_than(since, limit)
        if cursor is not None:
            newer = _while(newer, lambda tweet_id: tweet_id < cursor)
        tweets = _take(newer, limit)[::-1]
        oldest = tweets[-1].tweet_id if tweets else since + 1
        has_older = bool(_take(timeline.older_than(oldest, 1), 1))
    PAGES.inc()
    if timeline.read_postgres:
        POSTGRES_PAGES.inc()
    prev_cursor: str | None
    if tweets:
        prev_cursor = str(tweets[0].tweet_id)
    else:
        prev_cursor = str(since) if since is not None else None
    return TimelinePage(
        tweets=tweets,
        next_cursor=str(tweets[-1].tweet_id) if tweets and has_older else None,
        prev_cursor=prev_cursor,
    )
