"""RabbitMQ as the broker: the fan-out queue is a quorum queue, and what a SIGKILLed worker
held goes back to the queue at once, for another worker.

Real processes on the RabbitMQ at 127.0.0.1:5672, in a virtual host of the test's own
(``rabbitmqctl add_vhost``; without rabbitmqctl, a queue of its own in ``/``), deleted
afterwards. ``celery worker`` subprocesses (production settings, configured only through
the environment) consume fan-outs posted on the test database. In the second test every
batch of a 300-batch fan-out is queued first; one worker is SIGKILLed a third of the way
through, and with no consumer left the messages it held must be back in the queue within
seconds (a Redis broker keeps them for its 600 s visibility timeout). A second worker then
finishes the fan-out; no beat runs and the reconciler's delay is an hour, so only the
redelivered messages can complete it. Every timeline must hold the tweet exactly once.
"""
import contextlib
import re
import shutil
import subprocess
import uuid
from urllib.parse import quote

import amqp
import pytest
from celery import Celery
from django.test import override_settings
from kombu import Connection

from config.settings.base import celery_task_queues
from core.redis import connection as redis_connection
from social.models import Follow, User
from tests.helpers import hold_timeline_tasks, tool_missing
from tests.stack.celery_processes import Processes, timelines, wait_for_processes, worker_env
from timelines import services, store
from timelines.models import PendingFanout
from tweets import services as tweet_services

RABBIT = "127.0.0.1:5672"
FOLLOWERS = 3000
BATCH_SIZE = 10
BATCHES = FOLLOWERS // BATCH_SIZE

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _rabbitmqctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True,
                          timeout=60).stdout


@pytest.fixture
def rabbit(monkeypatch):
    """``(broker_url, queue, vhost)``: a virtual host and queue name of this test's own, removed afterwards."""
    # Celery prefers this variable to any app's own broker (``make test`` sets it for the Redis broker).
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    try:
        with Connection(f"amqp://guest:guest@{RABBIT}//", connect_timeout=2) as conn:
            conn.connect()
    except OSError:
        tool_missing(f"no RabbitMQ at {RABBIT} (Debian: apt-get install rabbitmq-server)")
    queue = f"timeline-quorum-{uuid.uuid4().hex[:8]}"
    vhost = None
    if shutil.which("rabbitmqctl"):
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            _rabbitmqctl("add_vhost", queue)
            vhost = queue
            _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    url = f"amqp://guest:guest@{RABBIT}/{quote(vhost or '/', safe='')}"
    try:
        yield url, queue, vhost
    finally:
        if vhost:
            _rabbitmqctl("delete_vhost", vhost)
        else:
            with Connection(url) as conn:
                conn.default_channel.queue_delete(queue)


def _producer(url: str, queue: str) -> Celery:
    """A Celery app publishing as the service does on RabbitMQ (settings' queue declaration)."""
    producer = Celery("producer", broker=url, set_as_current=False)
    producer.conf.update(task_queues=celery_task_queues(queue, url), task_default_queue=queue,
                         task_default_exchange_type="topic", broker_transport_options={"confirm_publish": True})
    return producer


def _worker_env(url: str, queue: str, prefix: str) -> dict[str, str]:
    return worker_env(prefix) | {
        "CELERY_BROKER_URL": url,
        "CELERY_QUEUE": queue,
        "FANOUT_RECONCILE_AFTER_SECONDS": "3600",  # no reconciler: redelivery alone must finish the fan-out
        "CELERY_WORKER_PREFETCH_MULTIPLIER": "8",  # the dead worker holds many messages
    }


def test_the_fanout_queue_is_a_quorum_queue_consumed_by_a_worker(rabbit, redis_namespace, tmp_path, monkeypatch,
                                                                  make_user):
    url, queue, vhost = rabbit
    author, follower = make_user(), make_user()
    Follow.objects.create(follower=follower, followee=author, state=Follow.State.ACCEPTED)
    redis_connection().rpush(store.timeline_key(follower.id), store.SENTINEL)
    held = hold_timeline_tasks(monkeypatch, [])
    tweet = tweet_services.tweet_create(author=author, content="through a quorum queue")
    assert [task.name for task, _ in held] == [services.FANOUT_TASK]

    procs = Processes(_worker_env(url, queue, redis_namespace), tmp_path)
    try:
        procs.start_worker("worker")
        assert "Global QoS is disabled" in procs.log("worker")
        _producer(url, queue).send_task(services.FANOUT_TASK, args=[tweet.id])
        wait_for_processes(lambda: not PendingFanout.objects.filter(tweet_id=tweet.id).exists(), 30,
                  "the worker to run the fan-out", procs, "worker")
    finally:
        procs.stop_all()
    assert redis_connection().lrange(store.timeline_key(follower.id), 0, -1) == [
        str(tweet.id).encode(), store.SENTINEL]

    # The declared queue is a quorum queue: declaring it as a classic one is refused.
    with Connection(url) as conn:
        channel = conn.channel()
        with pytest.raises(amqp.exceptions.PreconditionFailed, match="x-queue-type"):
            channel.queue_declare(queue, durable=True, auto_delete=False, arguments={"x-queue-type": "classic"})
    if vhost:
        listed = _rabbitmqctl("list_queues", "-p", vhost, "name", "type", "durable", "arguments")
        line = next(row for row in listed.splitlines() if row.startswith(queue + "\t"))
        assert "\tquorum\ttrue\t" in line and "x-delivery-limit" in line, line


def _tasks(log: str, event: str) -> set[str]:
    return set(re.findall(r"Task timelines\.\w+\[([0-9a-f-]+)\] " + event, log))


def _ready(url: str, queue: str) -> int:
    """Messages in the queue that no consumer holds (a passive declare's count)."""
    with Connection(url) as conn:
        return conn.default_channel.queue_declare(queue, passive=True).message_count


def test_a_worker_killed_mid_fanout_has_its_messages_redelivered_at_once(rabbit, redis_namespace, tmp_path,
                                                                         monkeypatch):
    url, queue, _ = rabbit
    tag = uuid.uuid4().hex[:5]
    author = User.objects.create(username=f"a{tag}", password="!")
    followers = User.objects.bulk_create([User(username=f"f{tag}{i}", password="!") for i in range(FOLLOWERS)])
    Follow.objects.bulk_create(
        [Follow(follower=f, followee=author, state=Follow.State.ACCEPTED) for f in followers], batch_size=1000)
    User.objects.filter(id=author.id).update(followers_count=FOLLOWERS)
    readers = [f.id for f in followers] + [author.id]
    pipe = redis_connection().pipeline(transaction=False)
    for uid in readers:  # every timeline cached (empty and complete), as after one read
        pipe.rpush(store.timeline_key(uid), store.SENTINEL)
        pipe.expire(store.timeline_key(uid), 3600)
    pipe.execute()
    hold_timeline_tasks(monkeypatch, [])
    tweet_id = tweet_services.tweet_create(author=author, content="survives a SIGKILL").id

    # The coordinator runs here, so every batch is queued before a worker starts.
    producer = _producer(url, queue)
    monkeypatch.setattr(services, "_send", lambda name, *args: producer.send_task(name, args=list(args)))
    with override_settings(FANOUT_BATCH_SIZE=BATCH_SIZE):
        services.fanout_tweet(tweet_id=tweet_id)
    assert _ready(url, queue) == BATCHES - 1

    procs = Processes(_worker_env(url, queue, redis_namespace) | {"FANOUT_BATCH_SIZE": str(BATCH_SIZE)}, tmp_path)
    try:
        procs.start_worker("doomed")
        wait_for_processes(lambda: len(store.progress_pending(tweet_id=tweet_id)) <= BATCHES * 2 // 3, 30,
                  "a third of the batches", procs, "doomed")
        procs.kill("doomed")
        pending = store.progress_pending(tweet_id=tweet_id)
        doomed_log = procs.log("doomed")
        held = _tasks(doomed_log, "received") - _tasks(doomed_log, "succeeded")
        assert pending and held, "the worker died holding messages (acks_late)"
        # No consumer left: what the dead worker held is back in the queue, and nothing is lost.
        wait_for_processes(lambda: _ready(url, queue) >= len(pending), 5, "the held messages to be requeued", procs)

        procs.start_worker("survivor")
        wait_for_processes(lambda: not PendingFanout.objects.filter(tweet_id=tweet_id).exists(), 30,
                  "the survivor to finish the fan-out", procs, "survivor")
        print(f"\nkilled with {len(pending)} of {BATCHES} batches outstanding and {len(held)} messages held")
        survivor_log = procs.log("survivor")
        assert held <= _tasks(survivor_log, "received"), "every message the dead worker held came back"
        assert "is late" not in survivor_log  # not the reconciler's doing
    finally:
        procs.stop_all()

    copies = {uid: entries.count(str(tweet_id).encode()) for uid, entries in timelines(readers).items()}
    missed = [uid for uid, n in copies.items() if n == 0]
    repeated = [uid for uid, n in copies.items() if n > 1]
    assert not missed, f"{len(missed)} timelines never got the tweet"
    assert not repeated, f"{len(repeated)} timelines got the tweet more than once"
    assert all(entries == [str(tweet_id).encode(), store.SENTINEL] for entries in timelines(readers).values())
