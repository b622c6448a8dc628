"""Writes to home timelines: fan-out on write, celebrity lists, follow changes and
the reconciler that makes sure no fan-out is ever lost.

Only this module and ``rebuilds`` (both through ``timelines.store``) change what
timelines hold (a read only refreshes TTLs and marks its reader live), and only
this module enqueues timeline tasks. It sends them by
name (the names below): ``tasks`` imports this module, never the other way.
"""
import atexit
import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from core import redis as core_redis
from tweets import snowflake

from . import store
from .metrics import (
    FAILOVER_SLOTS_REPAIRED,
    FANOUT_BATCH_ADDRESSED,
    FANOUT_DELIVERIES,
    FANOUT_LAG,
    RECONCILER_RESTARTS,
)
from .models import PendingFanout, PendingFollowUpdate
from .publisher import Publisher
from .queries import author_ids_from_db, followers_for_fanout, pending_fanout
from .signals import fanout_batch_done, tweet_delivered

logger = logging.getLogger(__name__)

# The timeline tasks (defined in ``tasks``, each calling one function below).
FANOUT_TASK = "timelines.fanout"
FANOUT_MANY_TASK = "timelines.fanout_many"
FANOUT_BATCH_TASK = "timelines.fanout_batch"
RECONCILE_TASK = "timelines.reconcile"
FOLLOW_UPDATE_TASK = "timelines.follow_update"
REPLAY_FOLLOW_UPDATES_TASK = "timelines.replay_follow_updates"
FAILOVER_REPAIR_TASK = "timelines.failover_repair"


class BrokerUnavailable(Exception):
    """A task could not be handed to the broker."""


def _send(task_name: str, *args) -> None:
    """Hand a task to the broker (the one place timeline tasks are sent from)."""
    task = current_app.tasks[task_name]  # a name no task has is a bug: raised, never taken for an outage
    try:
        task.delay(*args)
    except Exception as error:  # noqa: BLE001 - any broker failure
        raise BrokerUnavailable(task_name) from error


def _enqueue(task_name: str, *args) -> None:
    """Send a task; a broker outage is logged, not raised, so a committed write
    still answers 2xx (the reconciler, or the next read, makes up for it)."""
    try:
        _send(task_name, *args)
    except BrokerUnavailable:
        logger.exception("could not enqueue %s%r", task_name, args)


# --- Fan-out -----------------------------------------------------------------------


def fanout_schedule(*, tweet_id: int) -> None:
    """Start the new tweet's fan-out once its transaction has committed (never inline,
    never before), through the process's publisher (``publisher``: off the request's
    path, several posts a message when they come together). Its ``PendingFanout`` row
    is already there: the insert's trigger (migration 0003) wrote it in the same
    transaction, so a message never sent is the reconciler's to send.

    Called by ``receivers.tweet_created_schedule_fanout`` on a new tweet's post_save."""
    transaction.on_commit(lambda: _fanout_send_soon(tweet_id))


def _fanout_send_soon(tweet_id: int) -> None:
    if current_app.conf.task_always_eager:  # Celery's eager mode (the tests): sent, and so run, now
        _send_fanouts([tweet_id])
    else:
        _publisher.schedule(tweet_id)


def _send_fanouts(tweet_ids: list[int]) -> None:
    if len(tweet_ids) == 1:
        _enqueue(FANOUT_TASK, tweet_ids[0])
    else:
        _enqueue(FANOUT_MANY_TASK, tweet_ids)


_publisher = Publisher(_send_fanouts)
atexit.register(_publisher.flush)


def _batch_name(lo: int, hi: int) -> str:
    return f"{lo}:{hi}"


def fanout_tweet(*, tweet_id: int) -> int:
    """Deliver a tweet: the coordinator of its fan-out. Returns the timelines written here.

    A pulled tweet (its author was a celebrity when posting) goes to the author's
    pulled list and own timeline only. A pushed tweet goes to every accepted
    follower's cached timeline, read in one query. Up to ``FANOUT_BATCH_SIZE``
    followers (by default more than a pushed author has) are written here, in one
    pipelined round trip (after one more that keeps only followers who may have a
    cached timeline, from ``FANOUT_LIVE_FILTER_MIN`` followers up), with no
    bookkeeping beyond the ``PendingFanout`` row: a
    coordinator that dies is restarted whole by the reconciler. More followers
    are split into id ranges of that size, recorded (once) as the fan-out's
    outstanding batches; every batch but the first goes to other workers, and
    the last to finish clears the pending mark. Every delivery is an idempotent
    sorted insert, so a retried, duplicated or late task is harmless.
    """
    started = time.time()
    row = pending_fanout(tweet_id=tweet_id)
    if row is None:
        return 0  # delivered already (a duplicate message)
    author_id, pushed, deleted = row
    if deleted:
        _fanout_finished(tweet_id=tweet_id)
        return 0
    if not pushed:
        store.puller_add(author_id=author_id)
        store.author_insert(author_id=author_id, tweet_id=tweet_id)
        written = store.insert(user_ids=[author_id], tweet_id=tweet_id)
        FANOUT_DELIVERIES.inc(written)
        _announce(tweet_id=tweet_id, author_id=author_id, lo=0, hi=None)
        _fanout_finished(tweet_id=tweet_id, mode="pull")
        return written
    size = settings.FANOUT_BATCH_SIZE
    chunk = settings.FANOUT_READ_CHUNK if 0 < settings.FANOUT_READ_CHUNK < size else None
    began = time.perf_counter()
    followers = followers_for_fanout(author_id=author_id, tweet_id=tweet_id, limit=chunk)
    if chunk is not None and len(followers) == chunk:
        # More to read: each part is written while the next is read, if they all fit one batch.
        delivered = _deliver_overlapped(tweet_id=tweet_id, author_id=author_id, first=followers, chunk=chunk,
                                        started=started, pg_ms=_ms_since(began))
        if delivered is not None:
            return delivered
        began = time.perf_counter()
        followers = followers_for_fanout(author_id=author_id, tweet_id=tweet_id)
    pg_ms = _ms_since(began)
    if len(followers) <= size:
        return _deliver_batch(tweet_id=tweet_id, author_id=author_id, lo=0, hi=None, followers=followers,
                              started=started, pg_ms=pg_ms)
    batches = [followers[i : i + size] for i in range(0, len(followers), size)]
    ranges = []
    lo = 0
    for batch in batches:
        ranges.append((lo, batch[-1]))
        lo = batch[-1]
    if store.progress_init(tweet_id=tweet_id, batches=[_batch_name(lo, hi) for lo, hi in ranges]):
        for (lo, hi), batch in zip(ranges[1:], batches[1:], strict=True):
            # The ids travel with the message (no second query); one not sent stays pending.
            _enqueue(FANOUT_BATCH_TASK, tweet_id, author_id, lo, hi, batch)
    return _deliver_batch(tweet_id=tweet_id, author_id=author_id, lo=0, hi=ranges[0][1], followers=batches[0],
                          started=started, pg_ms=pg_ms)


def fanout_tweets(*, tweet_ids: list[int]) -> int:
    """``fanout_tweet`` for each of ``tweet_ids`` (posts sent in one message); one that
    fails does not hold the others back: the first error is raised after all were tried
    (the task is retried, and the fan-outs done by then return at once)."""
    written, failed = 0, None
    for tweet_id in tweet_ids:
        try:
            written += fanout_tweet(tweet_id=tweet_id)
        except Exception as error:  # noqa: BLE001 - raised below, once the others had their turn
            logger.warning("the fan-out of %s failed", tweet_id, exc_info=True)
            failed = failed or error
    if failed is not None:
        raise failed
    return written


def fanout_batch(*, tweet_id: int, author_id: int, lo: int, hi: int, follower_ids: list[int] | None = None) -> int:
    """Deliver one batch of a pushed tweet: its accepted followers with ids in (lo, hi],
    as the coordinator listed them or, when restarted by the reconciler, as they are now.
    A batch already written (a redelivered message, minutes later) does nothing: its
    writes would be no-ops, but announcing it again would reach the live streams twice."""
    if pending_fanout(tweet_id=tweet_id) is None:
        return 0  # the whole fan-out is done
    outstanding = store.progress_pending(tweet_id=tweet_id)
    if outstanding is not None and _batch_name(lo, hi) not in outstanding:
        return 0  # this batch is done (None: the bookkeeping was lost with Redis, so deliver)
    started = time.time()
    began = time.perf_counter()
    followers = follower_ids if follower_ids is not None else followers_for_fanout(
        author_id=author_id, tweet_id=tweet_id, lo=lo, hi=hi)
    return _deliver_batch(tweet_id=tweet_id, author_id=author_id, lo=lo, hi=hi, followers=followers,
                          started=started, pg_ms=0.0 if follower_ids is not None else _ms_since(began))


def _deliver_batch(*, tweet_id: int, author_id: int, lo: int, hi: int | None, followers: list[int],
                   started: float, pg_ms: float) -> int:
    """Write one batch; ``hi`` None: the whole fan-out in one batch, nothing recorded to mark done.
    ``started`` (when the task began) and ``pg_ms`` (its follower read) go to ``fanout_batch_done``."""
    addressed, written, redis_ms = _write(tweet_id=tweet_id, author_id=author_id, followers=followers,
                                          first=lo == 0)
    return _batch_written(tweet_id=tweet_id, author_id=author_id, lo=lo, hi=hi, followers=len(followers),
                          addressed=addressed, written=written, started=started, pg_ms=pg_ms, redis_ms=redis_ms)


def _deliver_overlapped(*, tweet_id: int, author_id: int, first: list[int], chunk: int, started: float,
                        pg_ms: float) -> int | None:
    """Deliver a whole fan-out whose followers are read ``chunk`` at a time, from ``first`` (the
    first part, full) on: each part is handed to the process's writer thread (``_writer``) and
    the next read meanwhile, so PostgreSQL's time and Redis's overlap. Announced and recorded
    once, as one batch, when every part is written. None when the followers turn out more than
    one batch holds: the caller then delivers in batches, writing these again (harmless: the
    inserts are idempotent, and nothing was announced)."""
    size = settings.FANOUT_BATCH_SIZE
    writer = _writer()
    part, count = first, 0
    writes: list[Future[tuple[int, int, float]]] = []
    while True:
        count += len(part)
        if count > size:
            break
        if part:
            writes.append(writer.submit(_write, tweet_id=tweet_id, author_id=author_id, followers=part,
                                        first=not writes))
        if len(part) < chunk:
            break
        began = time.perf_counter()
        part = followers_for_fanout(author_id=author_id, tweet_id=tweet_id, lo=part[-1], limit=chunk)
        pg_ms += _ms_since(began)
    done = [write.result() for write in writes]  # a failed write raises here: the task is retried
    if count > size:
        return None
    return _batch_written(tweet_id=tweet_id, author_id=author_id, lo=0, hi=None, followers=count,
                          addressed=sum(d[0] for d in done), written=sum(d[1] for d in done), started=started,
                          pg_ms=pg_ms, redis_ms=sum(d[2] for d in done))


def _write(*, tweet_id: int, author_id: int, followers: list[int], first: bool) -> tuple[int, int, float]:
    """Insert the tweet into the cached timelines of ``followers`` (and the author's own, with the
    first batch): (timelines addressed, timelines written, milliseconds)."""
    began = time.perf_counter()
    # Many followers: only those who may have a cached timeline (one bitmap read instead of a lookup each).
    live = store.live_only(user_ids=followers) if len(followers) >= settings.FANOUT_LIVE_FILTER_MIN \
        else followers
    addressed = [*live, author_id] if first else live
    written = store.insert(user_ids=addressed, tweet_id=tweet_id)
    return len(addressed), written, _ms_since(began)


def _batch_written(*, tweet_id: int, author_id: int, lo: int, hi: int | None, followers: int, addressed: int,
                   written: int, started: float, pg_ms: float, redis_ms: float) -> int:
    """Record a written batch (the last one finishes the fan-out), announce it, and report it."""
    FANOUT_BATCH_ADDRESSED.observe(addressed)
    FANOUT_DELIVERIES.inc(written)
    _announce(tweet_id=tweet_id, author_id=author_id, lo=lo, hi=hi)
    last = hi is None or store.progress_done(tweet_id=tweet_id, batch=_batch_name(lo, hi))
    if last:
        _fanout_finished(tweet_id=tweet_id, mode="push")
    fanout_batch_done.send_robust(sender=None, tweet_id=tweet_id, started=started, pg_ms=pg_ms, redis_ms=redis_ms,
                                  followers=followers, addressed=addressed, written=written, last=last)
    return written


# How long a batch's announcement is remembered: longer than a failed fan-out takes to be run again
# (its retries back off to a minute; the reconciler restarts it within FANOUT_RECONCILE_AFTER_SECONDS).
ANNOUNCED_SECONDS = 900


def _announce(*, tweet_id: int, author_id: int, lo: int, hi: int | None) -> None:
    """Tell the streams the batch is written (``tweet_delivered``), once: right after the write,
    before it is recorded done, and never again for a run repeated after its record failed (a
    mark in Redis, ``claim_once``). Announcing after the record would lose the event when the
    record commits but its answer is lost (a frozen PostgreSQL that continues); announcing
    each run would reach a stream process restarted in between twice. Redis unreachable: the
    mark cannot be read, and the announcement goes out (its publish most likely fails too)."""
    try:
        first = store.claim_once(name=f"announced:{tweet_id}:{lo}:{hi}", ttl=ANNOUNCED_SECONDS)
    except core_redis.UNREACHABLE:
        first = True
    if first:
        tweet_delivered.send_robust(sender=None, tweet_id=tweet_id, author_id=author_id, lo=lo, hi=hi)


_writers: tuple[int, ThreadPoolExecutor] | None = None
_writers_lock = threading.Lock()


def _writer() -> ThreadPoolExecutor:
    """This process's fan-out writer thread (one: a fan-out's parts are written in order), made
    on first use in each process (a prefork child's own, never its parent's)."""
    global _writers
    with _writers_lock:
        if _writers is None or _writers[0] != os.getpid():
            _writers = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="fanout-writer"))
        return _writers[1]


def _ms_since(began: float) -> float:
    return 1000 * (time.perf_counter() - began)


def _fanout_finished(*, tweet_id: int, mode: str | None = None) -> None:
    """Clear the pending mark; ``mode`` (push or pull) when the tweet was delivered, for its lag."""
    # One statement: the ORM's delete collects related objects and sends signals, for a row that has neither.
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {PendingFanout._meta.db_table} WHERE tweet_id = %s", [tweet_id])
    if mode is not None:
        FANOUT_LAG.labels(mode=mode).observe(max(time.time() - snowflake.timestamp_ms_of(tweet_id) / 1000, 0.0))


def fanout_reconcile(*, older_than_seconds: float | None = None, limit: int = 1000) -> int:
    """Restart fan-outs still pending after ``FANOUT_RECONCILE_AFTER_SECONDS``.

    Their tweets were committed, but the message was never sent (broker down),
    or a worker died with a batch, or the bookkeeping was lost with Redis. Only
    what is outstanding is sent again: the recorded batches, or the whole fan-out
    when none are recorded. A fan-out is retried at most once per period, so a
    slow queue is not flooded with copies. Returns how many fan-outs it restarted.
    """
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
            _send(FANOUT_TASK, tweet_id)
        else:
            for batch in pending:
                lo, hi = map(int, batch.split(":"))
                _send(FANOUT_BATCH_TASK, tweet_id, author_id, lo, hi)
        restarted += 1
        RECONCILER_RESTARTS.inc()
    if (marked := store.index_live()) is not None:
        logger.info("marked the owners of %s cached timelines live: large fan-outs skip the others", marked)
    return restarted


# --- Follow changes ----------------------------------------------------------------


def timeline_follow_schedule(*, user_id: int, followee_id: int, followed: bool) -> None:
    """Record a follow change as pending, in its own transaction, and update the cached
    timeline once it has committed (``timeline_follow_update``). The record is what
    ``follow_updates_replay`` falls back on if that update never completes."""
    pending = PendingFollowUpdate.objects.create(user_id=user_id)
    transaction.on_commit(lambda: timeline_follow_update(
        user_id=user_id, followee_id=followee_id, followed=followed, pending_id=pending.id))


def timeline_follow_update(*, user_id: int, followee_id: int, followed: bool, pending_id: int | None = None,
                           retry_later: bool = True) -> None:
    """Bring a cached timeline up to date with one follow change (call after commit).

    The user's generation moves on first, so the cached graph and any rebuild
    in flight are discarded. A new followee's pushed tweets are then backfilled
    into the cached timeline, a former followee's removed (the read path filters
    them out meanwhile); an uncached timeline is left for its next read to
    rebuild. Done, it deletes its ``PendingFollowUpdate`` (``pending_id``).
    Called by ``timeline_follow_schedule`` right after the follow commits, so
    the follower's next read is already right; if Redis or PostgreSQL fails
    then, the ``FOLLOW_UPDATE_TASK`` retries it (``retry_later=False``: the
    task's own retries, so errors propagate), and should that never succeed
    either, ``follow_updates_replay`` rebuilds the timeline within seconds.
    """
    try:
        generation = store.generation_advance(user_id=user_id)
        if store.exists(user_id=user_id):
            cap = settings.TIMELINE_MAX_ENTRIES
            ids = author_ids_from_db(author_id=followee_id, pushed=True, limit=cap)
            if followed:
                if not store.backfill(user_id=user_id, ids=ids, complete=len(ids) < cap, generation=generation):
                    # The graph moved on again meanwhile: start from scratch instead.
                    store.generation_advance(user_id=user_id, drop_timeline=True)
            else:
                store.remove(user_id=user_id, ids=ids, generation=generation)
        if pending_id is not None:
            PendingFollowUpdate.objects.filter(id=pending_id).delete()
    except Exception:  # noqa: BLE001 - Redis or PostgreSQL blip: the commit stands, retry from a task
        if not retry_later:
            raise
        logger.exception("could not update the timeline of user %s", user_id)
        _enqueue(FOLLOW_UPDATE_TASK, user_id, followee_id, followed, pending_id)


def follow_updates_replay(*, older_than_seconds: float | None = None, limit: int = 1000) -> int:
    """Apply follow changes whose timeline update has not completed after
    ``FOLLOW_UPDATE_REPLAY_AFTER_SECONDS``: each user's generation moves on (the cached
    graph is re-read from PostgreSQL) and their timeline is dropped, to be rebuilt on
    the next read. Rows wait while Redis is unreachable. Returns how many users it reset.
    """
    grace = settings.FOLLOW_UPDATE_REPLAY_AFTER_SECONDS if older_than_seconds is None else older_than_seconds
    stale = list(PendingFollowUpdate.objects.filter(created_at__lt=timezone.now() - timedelta(seconds=grace))
                 .order_by("id").values_list("id", "user_id")[:limit])
    user_ids = sorted({user_id for _, user_id in stale})
    for user_id in user_ids:
        logger.warning("timeline update of user %s after a follow change is late: rebuilding it", user_id)
        store.generation_advance(user_id=user_id, drop_timeline=True)
    PendingFollowUpdate.objects.filter(id__in=[row_id for row_id, _ in stale]).delete()
    return len(user_ids)


# --- Redis Cluster failover ---------------------------------------------------------

_FAILOVER_REPAIR_MAX_SECONDS = 3600  # a repair's claim lapses after this (its worker died)


def failover_repair() -> set[int] | None:
    """After a Redis Cluster failover, have what the promoted replicas may lack built
    again from PostgreSQL. Returns the slots repaired (None: not on a cluster).

    A master killed right after acknowledging writes may take them with it
    (replication is asynchronous): a fan-out that finished, a follow's backfill.
    PostgreSQL has them; the cached lists may not. Beat runs this every
    ``REDIS_FAILOVER_CHECK_SECONDS``: it compares the cluster's slot map with the
    one it saw last, and in the slots whose master changed, drops the timelines
    and pulled lists and moves the generations on (``store.slots_forget``), so the
    next read of each rebuilds it. A migrated slot counts too (a rebuild for
    nothing, but a reshard is rare). The first run only records the map.
    """
    if not core_redis.is_cluster():
        return None
    now = core_redis.slot_masters()
    before = store.slot_masters_seen()
    moved = core_redis.slots_moved(before, now) if before is not None else set()
    if not moved:
        if before != now:
            store.slot_masters_record(now)
        return moved
    # A repair of a large master outlasts the check's period: one run at a time (the
    # claim lapses if its worker dies; the map, not recorded, has the next run start over).
    if not store.claim_once(name="failover-repair", ttl=_FAILOVER_REPAIR_MAX_SECONDS):
        return set()
    try:
        logger.warning("Redis Cluster: %s slots changed master; forgetting what they cached", len(moved))
        forgotten = store.slots_forget(slots=moved)
        logger.warning("Redis Cluster failover repaired: %s timelines and %s pulled lists to rebuild%s",
                       forgotten.timelines, forgotten.pulled_lists,
                       ", live filter off until re-indexed" if forgotten.pull_keys else "")
        store.slot_masters_record(now)
        FAILOVER_SLOTS_REPAIRED.inc(len(moved))
    finally:
        store.claim_release(name="failover-repair")
    return moved
