"""The service on a real Redis Cluster (``REDIS_CLUSTER=1``): three masters of
``redis-server`` started for this module, then six (a replica each) for a failover.

The whole timeline suite runs on a cluster with ``TEST_REDIS_CLUSTER=1``
(docs/testing.md); this module keeps the key scenarios in the default suite:
post, fan-out, read, follow, unfollow, celebrity pull, a login's two limits in two
slots, Snowflake leases, the round trips of a fan-out batch and of a page, and a
master killed under reads and writes.
"""
import contextlib
import threading
import time

import pytest
from django.db import connection as db_connection
from redis.cluster import RedisCluster
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from core import redis as core_redis
from core import throttling
from core.rates import Rate
from social.models import Follow
from stack.redis_cluster import start_redis_cluster
from tests.helpers import ids, post, redis_round_trips, scroll
from timelines import services as tl_services
from timelines import store
from tweets import cache as tweet_cache
from tweets.models import Tweet


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with contextlib.ExitStack() as cleanup:
        yield start_redis_cluster(tmp_path_factory.mktemp("cluster"), cleanup)


@pytest.fixture
def on_cluster(settings, cluster):
    settings.REDIS_URL, settings.REDIS_CLUSTER = cluster.url, True
    assert isinstance(core_redis.connection(), RedisCluster)
    return cluster



def _truth(user) -> list[str]:
    """The user's home timeline as PostgreSQL has it: own and accepted followees' live tweets."""
    authors = [user.id, *Follow.objects.filter(follower=user, state="accepted").values_list("followee_id", flat=True)]
    return [str(i) for i in Tweet.objects.filter(author_id__in=authors, deleted_at__isnull=True)
            .order_by("-id").values_list("id", flat=True)]


@pytest.mark.django_db(transaction=True)
def test_post_fanout_read_follow_unfollow_and_celebrity_pull(on_cluster, make_user, api, settings):
    settings.TIMELINE_CELEBRITY_THRESHOLD = 5
    author, celebrity, *readers = make_user(), make_user(), *(make_user() for _ in range(4))
    api(make_user()).post(f"/v1/users/{celebrity.id}/follow")  # the celebrity's fifth follower
    for reader in readers:
        api(reader).post(f"/v1/users/{author.id}/follow")
        api(reader).post(f"/v1/users/{celebrity.id}/follow")
        assert ids(api(reader)) == []  # caches each reader's timeline, in slots all over the cluster
    pushed = post(api(author), "pushed")
    pulled = post(api(celebrity), "pulled")
    assert not Tweet.objects.get(id=pulled).pushed
    for reader in readers:
        assert store.read(user_id=reader.id).window.ids == [int(pushed)]
        assert ids(api(reader)) == [pulled, pushed]
    api(readers[0]).delete(f"/v1/users/{author.id}/follow")
    assert ids(api(readers[0])) == [pulled]
    api(readers[0]).post(f"/v1/users/{author.id}/follow")
    assert ids(api(readers[0])) == [pulled, pushed]
    api(author).delete(f"/v1/tweets/{pushed}")
    for reader in readers:
        assert scroll(api(reader)) == _truth(reader) == [pulled]


@pytest.mark.django_db
def test_a_fanout_batch_is_one_round_trip_per_node(on_cluster, make_user, monkeypatch):
    users = list(range(10_000, 10_200))
    for uid in users:
        store.merge(user_id=uid, ids=[], complete=True, generation=0)
    keys = [store.timeline_key(uid) for uid in users]
    assert len(core_redis.slot_groups(keys)) > 100  # the keys lie in many slots, on every node
    assert store.insert(user_ids=users, tweet_id=4) == len(users)  # loads the script on every node
    sent = redis_round_trips(monkeypatch, lambda connection, command: connection.port)
    assert store.insert(user_ids=users, tweet_id=5) == len(users)
    assert len(sent) == len(set(sent)) == 3
    assert all(store.read(user_id=uid).window.ids == [5, 4] for uid in users[:20])


@pytest.mark.django_db
def test_a_page_hydrates_with_one_multiget_per_node(on_cluster, make_user, api, monkeypatch):
    author, reader = make_user(), make_user()
    api(reader).post(f"/v1/users/{author.id}/follow")
    posted = [post(api(author), f"t{i}") for i in range(30)]
    cached = tweet_cache.get_or_fill_many([int(i) for i in posted])
    sent = redis_round_trips(monkeypatch, lambda connection, command: connection.port)
    assert tweet_cache.get_or_fill_many([int(i) for i in posted]) == cached
    assert len(sent) == len(set(sent)) <= 3


@pytest.mark.django_db
def test_a_login_counts_two_limits_in_two_slots(on_cluster):
    rate = Rate(limit=2, seconds=60)
    ip, name = "ip:10.0.0.1", "name:x"
    assert len(core_redis.slot_groups([f"rl:login:{ip}", f"rl:login:{name}"])) == 2
    assert throttling.hit(scope="login", who=[ip, name], rate=rate).allowed
    assert throttling.hit(scope="login", who=[ip, "name:y"], rate=rate).allowed
    refused = throttling.hit(scope="login", who=[ip, "name:z"], rate=rate)
    assert not refused.allowed and refused.retry_after > 0
    # The refusal counted against neither: "name:z" is untouched.
    assert throttling.hit(scope="login", who=["ip:10.0.0.2", "name:z"], rate=rate).remaining == 1


@pytest.mark.django_db(transaction=True)
def test_a_master_killed_under_reads_and_writes_fails_over_and_loses_nothing(settings, make_user, tmp_path):
    """Readers and a writer keep going while the master holding the readers' timelines
    is killed. A cluster failing over is an unreachable Redis like any other: reads are
    served (from PostgreSQL) and posts committed, or at worst refused with a 503 and
    ``Retry-After`` while the replica is promoted (and a moment for the client to see it);
    never a 500. Afterwards every reader's timeline is PostgreSQL's."""
    with contextlib.ExitStack() as cleanup:
        nodes = start_redis_cluster(tmp_path, cleanup, replicas=1, node_timeout_ms=1000)
        saved = settings.REDIS_URL, settings.REDIS_CLUSTER
        settings.REDIS_URL, settings.REDIS_CLUSTER = nodes.url, True
        settings.FANOUT_RECONCILE_AFTER_SECONDS = 0
        author = make_user()
        readers = [make_user() for _ in range(6)]
        clients = {}
        for user in [author, *readers]:
            clients[user.id] = APIClient(raise_request_exception=False)
            clients[user.id].credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
        for reader in readers:
            assert clients[reader.id].post(f"/v1/users/{author.id}/follow").status_code == 200
            assert clients[reader.id].get("/v1/timeline/home").status_code == 200
        victim = core_redis.connection().get_node_from_key(store.timeline_key(readers[0].id)).port
        stop, errors, answered, refused = threading.Event(), [], [], []

        def load(kind, user):
            try:
                client = clients[user.id]
                while not stop.is_set():
                    try:
                        r = (client.post("/v1/tweets", {"content": "x"}, format="json") if kind == "write"
                             else client.get("/v1/timeline/home"))
                        if r.status_code in (200, 201):
                            answered.append(time.monotonic())
                        elif r.status_code == 503 and kind == "write" and int(r["Retry-After"]) > 0:
                            refused.append(time.monotonic())
                        else:
                            errors.append((time.monotonic(), kind, r.status_code, r.content[:200]))
                    except Exception as exc:  # noqa: BLE001 - a client-side failure is an error like a 5xx
                        errors.append((time.monotonic(), kind, "raised", repr(exc)[:200]))
                    time.sleep(0.01)
            finally:
                db_connection.close()

        threads = [threading.Thread(target=load, args=("write", author)),
                   *(threading.Thread(target=load, args=("read", r)) for r in readers[:3])]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1)
            killed_at = time.monotonic()
            nodes.kill(victim)
            deadline = time.monotonic() + 30
            while victim in nodes.masters() or len(nodes.masters()) < 3:
                assert time.monotonic() < deadline, "no replica was promoted"
                time.sleep(0.1)
            nodes.wait_ok()
            recovered_at = time.monotonic()
            time.sleep(2)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        grace = recovered_at + 1.5  # the client reloads the slot map on its next error
        assert errors == [], errors[:5]  # no 500 (nor anything but 200, 201, or a write's 503), ever
        assert not [t for t in refused if t < killed_at or t > grace], "posts refused outside the failover window"
        assert [t for t in answered if killed_at < t < recovered_at], "nothing answered during the failover"
        assert [t for t in answered if t > grace], "nothing answered after the failover"
        # The audit: fan-outs cut short by the failover are sent again, then nothing is missing.
        tl_services.fanout_reconcile(older_than_seconds=0)
        assert Tweet.objects.filter(author=author).count() > 10
        for reader in readers:
            assert scroll(clients[reader.id], limit=100) == _truth(reader)
        # Back to the suite's Redis before this cluster stops (the key clean-up runs after the test).
        settings.REDIS_URL, settings.REDIS_CLUSTER = saved


def test_a_cluster_with_the_default_broker_is_refused_at_start():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env.update(REDIS_CLUSTER="1", DJANGO_SETTINGS_MODULE="config.settings.base")
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "ImproperlyConfigured: REDIS_CLUSTER=1 needs a RabbitMQ broker" in result.stderr
    env["CELERY_BROKER_URL"] = "amqp://guest:guest@127.0.0.1:5672//"
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.django_db
def test_readyz_checks_every_master_not_only_the_one_named(settings, tmp_path, client):
    """A master that is down (a slot range without its master) makes the web process not
    ready, whichever node ``REDIS_URL`` names."""
    saved = settings.REDIS_URL, settings.REDIS_CLUSTER
    with contextlib.ExitStack() as cleanup:
        nodes = start_redis_cluster(tmp_path, cleanup)
        settings.REDIS_URL, settings.REDIS_CLUSTER = nodes.url, True
        try:
            assert client.get("/readyz").status_code == 200
            named = int(nodes.url.rsplit(":", 1)[1].split("/")[0])
            nodes.kill(next(port for port in nodes.ports if port != named))
            r = client.get("/readyz")
            assert r.status_code == 503 and r.json()["failing"] == ["redis"], r.content
        finally:
            # Back to the suite's Redis before this cluster stops (the key clean-up runs after the test).
            settings.REDIS_URL, settings.REDIS_CLUSTER = saved
