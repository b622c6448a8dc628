"""Writes to home timelines: fan-out on write, rebuilds, and reactions to follow changes.

Only this module (through ``timelines.store``) writes timeline keys, and only
it enqueues timeline tasks.
"""
import logging

from django.conf import settings
from django.db import transaction

from social.models import Follow
from tweets.models import Tweet

from . import store
from .selectors import timeline_ids_from_db

logger = logging.getLogger(__name__)


def _enqueue(task, *args) -> None:
    """Send a task; a broker outage is logged, not raised, so a committed write still answers 2xx."""
    try:
        task.delay(*args)
    except Exception:  # noqa: BLE001 - any broker failure
        logger.exception("could not enqueue %s%r", task.name, args)


def fanout_schedule(*, tweet_id: int) -> None:
    """Fan a new tweet out once its transaction has committed (never inline, never before)."""
    from .tasks import fanout_task

    transaction.on_commit(lambda: _enqueue(fanout_task, tweet_id, 0))


def fanout_tweet(*, tweet_id: int, after_follower_id: int = 0) -> int:
    """Deliver one batch of a tweet's fan-out and hand the rest to another task.

    Pages through the author's accepted followers by keyset over the
    ``(followee_id, follower_id)`` index. The next batch is enqueued *before*
    this one is written, so a large fan-out spreads over all workers; a retry of
    this batch does not enqueue it again. Every delivery is an idempotent sorted
    insert, so retries and duplicates are safe. Returns the number of timelines written.
    """
    author_id = Tweet.objects.filter(id=tweet_id, deleted_at__isnull=True).values_list("author_id", flat=True).first()
    if author_id is None:
        return 0
    batch_size = settings.FANOUT_BATCH_SIZE
    followers = list(
        Follow.objects.filter(
            followee_id=author_id, state=Follow.State.ACCEPTED, follower_id__gt=after_follower_id
        )
        .order_by("follower_id")
        .values_list("follower_id", flat=True)[:batch_size]
    )
    if len(followers) == batch_size:
        _fanout_continue(tweet_id=tweet_id, after_follower_id=followers[-1])
    if after_follower_id == 0:
        followers.append(author_id)  # the author's own timeline, once
    return store.insert(user_ids=followers, tweet_id=tweet_id)


def _fanout_continue(*, tweet_id: int, after_follower_id: int) -> None:
    """Enqueue the next batch exactly once; a failure raises, so this batch's task is retried."""
    from .tasks import fanout_task

    claim = f"fanout:{tweet_id}:{after_follower_id}"
    if store.claim_once(name=claim):
        try:
            fanout_task.delay(tweet_id, after_follower_id)
        except Exception:
            store.release_claim(name=claim)
            raise


def timeline_rebuild(*, user_id: int, generation: int) -> store.Window:
    """Build a user's cached timeline from PostgreSQL, without losing a concurrent delivery.

    Fan-out skips a timeline that is not cached, so a tweet committed while we
    read PostgreSQL could be missed by both. Hence two reads: the first builds
    the list (merged atomically with whatever appeared meanwhile); the second,
    made once the list exists, sees every tweet whose fan-out could have skipped
    it, and is merged in too (a no-op in the common case). A merge is refused if
    the follow graph changed after ``generation`` was read; then the rebuild
    starts over, and if the graph keeps changing the page is served uncached.
    """
    cap = settings.TIMELINE_MAX_ENTRIES
    for _ in range(3):
        for _ in range(2):
            ids = timeline_ids_from_db(user_id=user_id, before=None, limit=cap)
            if not store.merge(user_id=user_id, ids=ids, complete=len(ids) < cap, generation=generation):
                break
        else:
            window = store.read(user_id=user_id).window
            if window is not None:
                return window
        generation = store.generation(user_id=user_id)
    return store.Window(ids=ids, complete=len(ids) < cap)


def timeline_follow_changed(*, user_id: int, followed: bool) -> None:
    """After commit: a new followee's older tweets are missing from the cached
    timeline, so drop it (the next read rebuilds it); an unfollow only
    invalidates the cached followees, and the read path filters the tweets."""
    transaction.on_commit(lambda: _follow_graph_changed(user_id=user_id, followed=followed))


def _follow_graph_changed(*, user_id: int, followed: bool) -> None:
    from .tasks import follow_graph_changed_task

    try:
        store.follow_graph_changed(user_id=user_id, drop_timeline=followed)
    except Exception:  # noqa: BLE001 - Redis blip: the commit stands, retry from a task
        logger.exception("could not invalidate the timeline of user %s", user_id)
        _enqueue(follow_graph_changed_task, user_id, followed)
