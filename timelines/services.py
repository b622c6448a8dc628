"""Writes to home timelines: fan-out on write, celebrity lists, rebuilds, follow
changes and the reconciler that makes sure no fan-out is ever lost.

Only this module (through ``timelines.store``) writes timeline keys, and only
it enqueues timeline tasks.
"""
import logging
import time

from django.conf import settings
from django.db import transaction

from social.models import Follow
from tweets import snowflake

from . import store
from .models import PendingFanout
from .selectors import author_ids_from_db, timeline_ids_from_db

logger = logging.getLogger(__name__)


def _send(task, *args) -> None:
    """Hand a task to the broker (the one place timeline tasks are sent from)."""
    task.delay(*args)


def _enqueue(task, *args) -> None:
    """Send a task; a broker outage is logged, not raised, so a committed write
    still answers 2xx (the reconciler, or the next read, makes up for it)."""
    try:
        _send(task, *args)
    except Exception:  # noqa: BLE001 - any broker failure
        logger.exception("could not enqueue %s%r", task.name, args)


# --- Fan-out -----------------------------------------------------------------------


def fanout_schedule(*, tweet_id: int) -> None:
    """Record the new tweet's fan-out as pending, in the tweet's own transaction,
    and start it once that has committed (never inline, never before)."""
    from .tasks import fanout_task

    PendingFanout.objects.create(tweet_id=tweet_id)
    transaction.on_commit(lambda: _enqueue(fanout_task, tweet_id))


def _batch_name(lo: int, hi: int) -> str:
    return f"{lo}:{hi}"


def fanout_tweet(*, tweet_id: int) -> int:
    """Deliver a tweet: the coordinator of its fan-out. Returns the timelines written here.

    A pulled tweet (its author was a celebrity when posting) goes to the author's
    pulled list and own timeline only. A pushed tweet goes to every accepted
    follower's cached timeline: the followers are split into id ranges of
    ``FANOUT_BATCH_SIZE``, recorded (once) as the fan-out's outstanding batches,
    and every batch but the first is sent to other workers; the first is written
    here. The last batch to finish clears the pending mark. Every delivery is an
    idempotent sorted insert, so a retried, duplicated or late task is harmless.
    """
    row = (PendingFanout.objects.filter(tweet_id=tweet_id)
           .values_list("tweet__author_id", "tweet__pushed", "tweet__deleted_at").first())
    if row is None:
        return 0  # delivered already (a duplicate message)
    author_id, pushed, deleted_at = row
    if deleted_at is not None:
        _fanout_finished(tweet_id=tweet_id)
        return 0
    if not pushed:
        store.puller_add(author_id=author_id)
        store.author_insert(author_id=author_id, tweet_id=tweet_id)
        written = store.insert(user_ids=[author_id], tweet_id=tweet_id)
        _fanout_finished(tweet_id=tweet_id)
        return written
    followers = list(Follow.objects.filter(followee_id=author_id, state=Follow.State.ACCEPTED)
                     .order_by("follower_id").values_list("follower_id", flat=True))
    size = settings.FANOUT_BATCH_SIZE
    batches = [followers[i : i + size] for i in range(0, len(followers), size)] or [[]]
    ranges = []
    lo = 0
    for batch in batches:
        hi = batch[-1] if batch else 0
        ranges.append((lo, hi))
        lo = hi
    if store.progress_init(tweet_id=tweet_id, batches=[_batch_name(lo, hi) for lo, hi in ranges]):
        from .tasks import fanout_batch_task

        for (lo, hi), batch in zip(ranges[1:], batches[1:], strict=True):
            # The ids travel with the message (no second query); one not sent stays pending.
            _enqueue(fanout_batch_task, tweet_id, author_id, lo, hi, batch)
    return _deliver_batch(tweet_id=tweet_id, author_id=author_id, lo=0, hi=ranges[0][1], followers=batches[0])


def fanout_batch(*, tweet_id: int, author_id: int, lo: int, hi: int, follower_ids: list[int] | None = None) -> int:
    """Deliver one batch of a pushed tweet: its accepted followers with ids in (lo, hi],
    as the coordinator listed them or, when restarted by the reconciler, as they are now."""
    if follower_ids is not None:
        followers = follower_ids
    else:
        followers = list(Follow.objects.filter(followee_id=author_id, state=Follow.State.ACCEPTED,
                                               follower_id__gt=lo, follower_id__lte=hi)
                         .order_by("follower_id").values_list("follower_id", flat=True))
    return _deliver_batch(tweet_id=tweet_id, author_id=author_id, lo=lo, hi=hi, followers=followers)


def _deliver_batch(*, tweet_id: int, author_id: int, lo: int, hi: int, followers: list[int]) -> int:
    if lo == 0:
        followers = [*followers, author_id]  # the author's own timeline, with the first batch
    written = store.insert(user_ids=followers, tweet_id=tweet_id)
    if store.progress_done(tweet_id=tweet_id, batch=_batch_name(lo, hi)):
        _fanout_finished(tweet_id=tweet_id)
    return written


def _fanout_finished(*, tweet_id: int) -> None:
    PendingFanout.objects.filter(tweet_id=tweet_id).delete()


def fanout_reconcile(*, older_than_seconds: float | None = None, limit: int = 1000) -> int:
    """Restart fan-outs still pending after ``FANOUT_RECONCILE_AFTER_SECONDS``.

    Their tweets were committed, but the message was never sent (broker down),
    or a worker died with a batch, or the bookkeeping was lost with Redis. Only
    what is outstanding is sent again: the recorded batches, or the whole fan-out
    when none are recorded. A fan-out is retried at most once per period, so a
    slow queue is not flooded with copies. Returns how many fan-outs it restarted.
    """
    from .tasks import fanout_batch_task, fanout_task

    grace = settings.FANOUT_RECONCILE_AFTER_SECONDS if older_than_seconds is None else older_than_seconds
    before = snowflake.lowest_id_at(int((time.time() - grace) * 1000))
    stuck = list(PendingFanout.objects.filter(tweet_id__lt=before).order_by("tweet_id")
                 .values_list("tweet_id", "tweet__author_id")[:limit])
    restarted = 0
    for tweet_id, author_id in stuck:
        if grace > 0 and not store.claim_once(name=f"reconcile:{tweet_id}", ttl=max(int(grace), 1)):
            continue
        pending = store.progress_pending(tweet_id=tweet_id)
        logger.warning("fan-out of tweet %s is late: restarting %s", tweet_id,
                       "batches " + ", ".join(pending) if pending else "it")
        if pending is None:
            _send(fanout_task, tweet_id)
        else:
            for batch in pending:
                lo, hi = map(int, batch.split(":"))
                _send(fanout_batch_task, tweet_id, author_id, lo, hi)
        restarted += 1
    return restarted


# --- Rebuilds ----------------------------------------------------------------------


def timeline_rebuild(*, user_id: int, generation: int, replace: bool = False) -> store.Window:
    """Build a user's cached timeline from PostgreSQL, without losing a concurrent delivery.

    Fan-out skips a timeline that is not cached, so a tweet committed while we
    read PostgreSQL could be missed by both. Hence two reads: the first builds
    the list (merged atomically with whatever appeared meanwhile, or replacing
    it); the second, made once the list exists, sees every tweet whose fan-out
    could have skipped it, and is merged in too (a no-op in the common case). A
    merge is refused if the follow graph changed after ``generation`` was read;
    then the rebuild starts over, and if the graph keeps changing the page is
    served uncached.
    """
    cap = settings.TIMELINE_MAX_ENTRIES
    for _ in range(3):
        for attempt in range(2):
            ids = timeline_ids_from_db(user_id=user_id, before=None, limit=cap, pushed_only=True)
            if not store.merge(user_id=user_id, ids=ids, complete=len(ids) < cap, generation=generation,
                               replace=replace and attempt == 0):
                break
        else:
            window = store.read(user_id=user_id).window
            if window is not None:
                return window
        generation = store.generation(user_id=user_id)
    return store.Window(ids=ids, complete=len(ids) < cap)


def author_list_rebuild(*, author_id: int) -> store.Window:
    """Build an author's pulled list from PostgreSQL, with the same two reads as a timeline."""
    cap = settings.TIMELINE_MAX_ENTRIES
    for _ in range(2):
        ids = author_ids_from_db(author_id=author_id, pushed=False, limit=cap)
        store.author_merge(author_id=author_id, ids=ids, complete=len(ids) < cap)
    return store.author_read(author_ids=[author_id])[author_id] or store.Window(ids=ids, complete=len(ids) < cap)


# --- Follow changes ----------------------------------------------------------------


def timeline_follow_changed(*, user_id: int, followee_id: int, followed: bool) -> None:
    """After commit: a new followee's pushed tweets are backfilled into the cached
    timeline, a former followee's are removed (the read path filters them out
    meanwhile). Done right away, so the follower's next read is already right;
    if Redis is unavailable, a task retries it."""
    transaction.on_commit(lambda: _follow_changed_now(user_id=user_id, followee_id=followee_id, followed=followed))


def _follow_changed_now(*, user_id: int, followee_id: int, followed: bool) -> None:
    from .tasks import follow_changed_task

    try:
        follow_changed(user_id=user_id, followee_id=followee_id, followed=followed)
    except Exception:  # noqa: BLE001 - Redis or PostgreSQL blip: the commit stands, retry from a task
        logger.exception("could not update the timeline of user %s", user_id)
        _enqueue(follow_changed_task, user_id, followee_id, followed)


def follow_changed(*, user_id: int, followee_id: int, followed: bool) -> None:
    generation = store.follow_graph_changed(user_id=user_id)
    if not store.exists(user_id=user_id):
        return  # nothing cached: the next read rebuilds it with the new graph
    cap = settings.TIMELINE_MAX_ENTRIES
    ids = author_ids_from_db(author_id=followee_id, pushed=True, limit=cap)
    if followed:
        if not store.backfill(user_id=user_id, ids=ids, complete=len(ids) < cap, generation=generation):
            # The graph moved on again meanwhile: start from scratch instead.
            store.follow_graph_changed(user_id=user_id, drop_timeline=True)
    else:
        store.remove(user_id=user_id, ids=ids, generation=generation)
