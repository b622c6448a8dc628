"""SIGKILL the Celery worker in the middle of a large fan-out; restart it: every follower gets the tweet once.

Real processes throughout: a ``celery worker`` subprocess (either pool, production
settings, configured only through the environment, as ``make run`` starts it)
consumes the fan-out of a tweet posted here, on the pytest-django test database,
the same Redis and this test's own Redis key prefix (which is also the broker's
``global_keyprefix``, so every broker key is removed with the test's keys). Once
part of the batches are written, the worker's whole process group is SIGKILLed:
the messages it held stay unacknowledged in the broker for the 600 s visibility
timeout, so what completes the fan-out is the reconciler, run by a ``celery beat``
subprocess started with the new worker (``FANOUT_RECONCILE_*`` shortened to 1 s).
At the end the broker's late redelivery of the dead worker's messages is forced
too, and every follower's cached timeline must hold the tweet exactly once, in
order, with nobody missed.
"""
import contextlib
import signal
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from kombu import Connection

from config.celery_app import app
from core.redis import connection as redis_connection
from social.models import Follow, User
from tests.helpers import drop_broker_pools
from tests.stack.celery_processes import Processes, timelines, wait_for_processes, worker_env
from timelines import store
from timelines.models import PendingFanout
from tweets import services as tweet_services

ROOT = Path(__file__).resolve().parents[2]
FOLLOWERS = 3000
BATCH_SIZE = 10  # 300 batch tasks: the fan-out lasts long enough to be cut in the middle
BATCHES = -(-FOLLOWERS // BATCH_SIZE)
ATTEMPTS = 3  # new tweets to try when a fan-out finishes before the kill lands

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _worker_env(prefix: str) -> dict[str, str]:
    return worker_env(prefix) | {"FANOUT_BATCH_SIZE": str(BATCH_SIZE)}


@pytest.fixture
def processes(transactional_db, redis_namespace, tmp_path):
    """Launches Celery subprocesses on this test's database, Redis prefix and queue; kills them all
    afterwards (before the database is flushed and the test's keys are deleted)."""
    if urlsplit(app.conf.broker_url).scheme not in ("redis", "rediss"):
        pytest.skip("needs the Redis broker: its unacknowledged messages are what a killed worker leaves")
    procs = Processes(_worker_env(redis_namespace), tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()


@contextlib.contextmanager
def _publishing_to_the_workers(prefix: str):
    """Send this process's tasks to the broker under ``prefix``, where the subprocesses consume
    (instead of running them inline); the producer pools are per transport options."""
    saved = app.conf.broker_transport_options, app.conf.task_always_eager
    app.conf.broker_transport_options = {**saved[0], "global_keyprefix": prefix}
    app.conf.task_always_eager = False
    drop_broker_pools()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            app.pool.force_close_all()
        app.conf.broker_transport_options, app.conf.task_always_eager = saved
        drop_broker_pools()


# --- The broker's and the timelines' state --------------------------------------------------


class Broker:
    """The Redis broker's keys under the test's prefix (kombu's Redis transport layout)."""

    def __init__(self, prefix: str, queue: str):
        self.prefix, self.queue = prefix, queue
        self.redis = redis_connection()

    def queued(self) -> int:
        return self.redis.llen(self.prefix + self.queue)

    def unacked(self) -> set[bytes]:
        return set(self.redis.hkeys(self.prefix + "unacked"))

    def drained(self, *, besides: set[bytes] = frozenset()) -> bool:
        """Nothing queued and nothing held but ``besides`` (three looks in a row, so
        a message between BRPOP and its unacked entry is not missed)."""
        for _ in range(3):
            if self.queued() or not self.unacked() <= besides:
                return False
            time.sleep(0.1)
        return True

    def redeliver_unacked(self) -> int:
        """What the broker does once the visibility timeout has passed: put every
        unacknowledged message back in its queue. Returns how many there were."""
        held = len(self.unacked())
        options = {**app.conf.broker_transport_options, "global_keyprefix": self.prefix, "visibility_timeout": 0}
        with Connection(app.conf.broker_url, transport_options=options) as conn:
            conn.default_channel.qos.restore_visible(num=10_000)
        return held


def _holding(user_ids: list[int], tweet_id: int) -> int:
    return sum(str(tweet_id).encode() in entries for entries in timelines(user_ids).values())


def _kill_mid_fanout(procs: Processes, worker: str, tweet_id: int, timeout: float = 30) -> bool:
    """SIGKILL the worker once a third of the batches are written; False if the fan-out ended first."""
    deadline = time.monotonic() + timeout
    started = False
    while time.monotonic() < deadline:
        pending = store.progress_pending(tweet_id=tweet_id)
        if pending is not None:
            started = True
            if len(pending) <= BATCHES * 2 // 3:
                procs.kill(worker)
                return True
        elif started or not PendingFanout.objects.filter(tweet_id=tweet_id).exists():
            return False
        time.sleep(0.001)
    raise AssertionError(f"the fan-out did not progress within {timeout} s\n{procs.log(worker)[-4000:]}")


# --- The test -------------------------------------------------------------------------------


@pytest.mark.parametrize("pool", ["prefork", "threads"])  # the Procfile's default, and CELERY_POOL=threads
def test_a_worker_killed_mid_fanout_and_restarted_leaves_every_follower_the_tweet_once(processes, redis_namespace,
                                                                                        pool):
    started = time.monotonic()
    tag = uuid.uuid4().hex[:5]
    author = User.objects.create(username=f"a{tag}", password="!")
    # An older tweet, delivered (inline) before anyone follows: every timeline starts out holding it.
    older = tweet_services.tweet_create(author=author, content="before the fan-out")
    followers = User.objects.bulk_create(
        [User(username=f"f{tag}{i}", password="!", following_count=1) for i in range(FOLLOWERS)])
    Follow.objects.bulk_create(
        [Follow(follower=f, followee=author, state=Follow.State.ACCEPTED) for f in followers], batch_size=1000)
    User.objects.filter(id=author.id).update(followers_count=FOLLOWERS)
    readers = [f.id for f in followers] + [author.id]  # the author's own timeline is written with the first batch
    # Every timeline is cached, as after one read: [older, sentinel] (store's list layout).
    pipe = redis_connection().pipeline(transaction=False)
    for uid in readers:
        pipe.rpush(store.timeline_key(uid), older.id, store.SENTINEL)
        pipe.expire(store.timeline_key(uid), 3600)
    pipe.execute()

    broker = Broker(redis_namespace, app.conf.task_default_queue)
    posted = []
    with _publishing_to_the_workers(redis_namespace):
        processes.start_worker("worker1", pool)
        for _attempt in range(ATTEMPTS):
            tweet = tweet_services.tweet_create(author=author, content=f"fan-out number {len(posted) + 1}")
            posted.append(tweet.id)
            assert tweet.pushed
            if _kill_mid_fanout(processes, "worker1", tweet.id):
                break
        else:
            pytest.fail(f"every one of {ATTEMPTS} fan-outs finished before the worker could be killed")
        tweet_id = posted[-1]

        # The worker and its pool children are gone: nothing writes any more.
        at_kill = _holding(readers, tweet_id)
        pending_at_kill = len(store.progress_pending(tweet_id=tweet_id) or [])
        held_by_the_dead = broker.unacked()
        print(f"\nkilled after {len(posted)} tweet(s): {at_kill} of {len(readers)} timelines had the tweet, "
              f"{pending_at_kill} of {BATCHES} batches outstanding, {len(held_by_the_dead)} messages held "
              f"by the dead worker, {broker.queued()} still queued")
        assert 0 < at_kill < len(readers), "the kill must land in the middle of the fan-out"
        assert PendingFanout.objects.filter(tweet_id=tweet_id).exists()
        assert held_by_the_dead, "the killed worker held messages (acks_late): they are not lost, only late"

        # Restart: a new worker and beat, whose reconciler re-sends the outstanding batches.
        processes.start_worker("worker2", pool)
        processes.start_beat("beat")
        wait_for_processes(lambda: not PendingFanout.objects.filter(tweet_id=tweet_id).exists(), 60,
                  "the fan-out to complete", processes, "worker2", "beat")
        assert store.progress_pending(tweet_id=tweet_id) is None
        assert "is late: restarting" in processes.log("worker2"), "the reconciler restarted the fan-out"
        processes.kill("beat", signal.SIGTERM)
        wait_for_processes(lambda: broker.drained(besides=held_by_the_dead), 30, "the queue to drain",
                           processes, "worker2")

        # Ten minutes on, the broker hands the dead worker's messages out again: still harmless.
        assert broker.redeliver_unacked() == len(held_by_the_dead)
        wait_for_processes(broker.drained, 30, "the redelivered messages to be consumed", processes, "worker2")
        processes.check_running("worker2")

    expected = [str(t).encode() for t in reversed(posted)] + [str(older.id).encode(), store.SENTINEL]
    cached = timelines(readers)
    wrong = {uid: entries for uid, entries in cached.items() if entries != expected}
    copies = {uid: entries.count(str(tweet_id).encode()) for uid, entries in cached.items()}
    missed = [uid for uid, n in copies.items() if n == 0]
    repeated = [uid for uid, n in copies.items() if n > 1]
    assert not missed, f"{len(missed)} timelines never got the tweet, e.g. {missed[:5]}"
    assert not repeated, f"{len(repeated)} timelines got the tweet more than once, e.g. {repeated[:5]}"
    assert not wrong, f"{len(wrong)} timelines are not {expected}, e.g. {list(wrong.items())[:3]}"
    for entries in cached.values():  # newest first, closed by the sentinel
        ids = [int(e) for e in entries[:-1]]
        assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    assert not PendingFanout.objects.exists()
    print(f"every one of {len(readers)} timelines holds the tweet once; test took {time.monotonic() - started:.1f} s")
