"""The service on a real Redis Cluster (``REDIS_CLUSTER=1``): three masters of
``redis-server`` started for this module, then six (a replica each) for a failover.

The whole timeline suite runs on a cluster with ``TEST_REDIS_CLUSTER=1``
(docs/testing.md); this module keeps the key scenarios in the default suite:
post, fan-out, read, follow, unfollow, celebrity pull, a login's two limits in two
slots, Snowflake leases, the round trips of a fan-out batch and of a page, a
master killed under reads and writes, a master killed mid-fan-out with writes its
replica never got (audited against PostgreSQL), and a breaker per node.
"""
import contextlib
import signal
import threading
import time
from collections import Counter

import pytest
from django.db import connection as db_connection
from prometheus_client import REGISTRY
from redis.cluster import RedisCluster
from redis.crc import key_slot
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from core import breaker, throttling
from core import redis as core_redis
from core.rates import Rate
from social.models import Follow
from stack.redis_cluster import start_redis_cluster
from tests.helpers import ids, post, redis_round_trips, scroll
from timelines import services as tl_services
from timelines import store
from timelines import tasks as tl_tasks
from timelines.signals import fanout_batch_done
from timelines.store import keys
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


def _script_calls(nodes) -> int:
    """The script calls the cluster's masters have run so far (``INFO commandstats``)."""
    stats = [nodes.client(port).info("commandstats") for port in nodes.masters()]
    return sum(int(s.get(f"cmdstat_{name}", {}).get("calls", 0)) for s in stats for name in ("evalsha", "eval"))


@pytest.mark.django_db
def test_a_fanout_insert_runs_once_per_node_and_chunk_over_every_slot(on_cluster, settings):
    """``store.insert`` on a cluster: the keys of a node's many slots go in one call (a chunk of
    ``FANOUT_SCRIPT_KEYS``), every cached timeline on every node takes the id once and in order
    (a retried or older id too), and a user without a cached timeline gets none."""
    settings.FANOUT_SCRIPT_KEYS = 400
    users = list(range(20_000, 21_500))
    for uid in users[:-100]:
        store.merge(user_id=uid, ids=[50, 10], complete=True, generation=0)
    client = core_redis.connection()
    by_node = Counter(client.get_node_from_key(store.timeline_key(uid)).name for uid in users)
    assert len(by_node) == 3 and len(core_redis.slot_groups(store.timeline_keys(users))) > 1000
    assert store.insert(user_ids=users, tweet_id=30) == len(users) - 100  # loads the script on every node
    calls = _script_calls(on_cluster)
    assert store.insert(user_ids=users, tweet_id=70) == len(users) - 100
    # About 500 keys a node: two calls of at most 400 keys each (not one per slot).
    assert _script_calls(on_cluster) - calls == sum(-(-count // 400) for count in by_node.values()) == 6
    assert store.insert(user_ids=users, tweet_id=30) == 0  # a retry changes nothing
    assert store.insert(user_ids=users, tweet_id=20) == len(users) - 100  # an older id goes in its place
    for uid in users[:-100]:
        assert store.read(user_id=uid).window.ids == [70, 50, 30, 20, 10], uid
    assert not any(store.exists(user_id=uid) for uid in users[-100:])


def _node_id(nodes, port: int) -> str:
    return nodes.client(port).execute_command("CLUSTER", "MYID").decode()


def _move_slot(nodes, slot: int, source: int, target: int, *, finish: bool = True) -> None:
    """Migrate ``slot`` from the master on port ``source`` to the one on ``target``, as
    ``redis-cli --cluster reshard`` does: its keys MIGRATEd, then (``finish``) the slot given to
    ``target`` on every node. Unfinished, the slot stays MIGRATING on ``source`` (its keys
    already gone: a client is sent on with ``ASK``)."""
    src, dst = nodes.client(source), nodes.client(target)
    dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", _node_id(nodes, source))
    src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", _node_id(nodes, target))
    moved = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
    if moved:
        src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *moved)
    if finish:
        for port in (target, source, *(p for p in nodes.masters() if p not in (source, target))):
            nodes.client(port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", _node_id(nodes, target))


@pytest.mark.django_db
def test_a_fanout_insert_with_a_stale_slot_map_reaches_the_keys_that_moved(settings, tmp_path):
    """Slots migrate while the product's client holds the old slot map: one moved for good,
    one half-way (MIGRATING: its key already on the other node, ``ASK``). The node's cross-slot
    call stops at such a key, before writing anything, and its keys go again per slot,
    following ``MOVED`` and ``ASK``: every cached timeline takes the id once, and the map is
    read afresh."""
    with contextlib.ExitStack() as cleanup:
        nodes = start_redis_cluster(tmp_path, cleanup)
        saved = settings.REDIS_URL, settings.REDIS_CLUSTER
        settings.REDIS_URL, settings.REDIS_CLUSTER = nodes.url, True
        cleanup.callback(lambda: setattr(settings, "REDIS_URL", saved[0]))
        cleanup.callback(lambda: setattr(settings, "REDIS_CLUSTER", saved[1]))
        users = list(range(30_000, 30_600))
        for uid in users:
            store.merge(user_id=uid, ids=[50, 10], complete=True, generation=0)
        client = core_redis.connection()
        assert store.insert(user_ids=users, tweet_id=30) == len(users)  # the map read, the script loaded
        ports = {node.name: node.port for node in client.get_primaries()}
        # Two users in the middle of one node's share: a call stops at the first and has written keys before it.
        source = client.get_node_from_key(store.timeline_key(users[0]))
        on_source = [uid for uid in users if client.get_node_from_key(store.timeline_key(uid)).name == source.name]
        gone, half = on_source[len(on_source) // 3], on_source[2 * len(on_source) // 3]
        target = next(port for name, port in ports.items() if name != source.name)
        _move_slot(nodes, key_slot(store.timeline_key(gone).encode()), source.port, target)
        _move_slot(nodes, key_slot(store.timeline_key(half).encode()), source.port, target, finish=False)
        assert client.get_node_from_key(store.timeline_key(gone)).name == source.name  # the map is stale
        moved = nodes.client(target).pipeline(transaction=False)
        moved.exists(store.timeline_key(gone)).execute_command("ASKING").exists(store.timeline_key(half))
        assert moved.execute() == [1, True, 1]  # both keys are on the other node now

        assert store.insert(user_ids=users, tweet_id=70) == len(users)  # each once: the failed calls wrote nothing
        for uid in users:
            assert store.read(user_id=uid).window.ids == [70, 50, 30, 10], uid
        assert client.get_node_from_key(store.timeline_key(gone)).port == target  # the map read again
        assert store.insert(user_ids=users, tweet_id=70) == 0  # sent again: nothing twice
        assert store.insert(user_ids=users, tweet_id=20) == len(users)
        assert all(store.read(user_id=uid).window.ids == [70, 50, 30, 20, 10] for uid in (gone, half, users[0]))


@pytest.mark.django_db
def test_a_fanout_insert_loads_the_script_on_a_node_that_lost_it(on_cluster):
    """A node without the script (restarted, or a replica just promoted) answers NOSCRIPT:
    it gets the script's cross-slot form, and its calls are sent again."""
    users = list(range(40_000, 40_300))
    for uid in users:
        store.merge(user_id=uid, ids=[], complete=True, generation=0)
    assert store.insert(user_ids=users, tweet_id=4) == len(users)
    flushed = on_cluster.masters()[0]
    on_cluster.client(flushed).script_flush()
    assert store.insert(user_ids=users, tweet_id=5) == len(users)
    assert all(store.read(user_id=uid).window.ids == [5, 4] for uid in users)


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
        tl_services.failover_repair()  # records the slot map
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
        # The audit: the failed slots' timelines are rebuilt (the dead master may have acknowledged
        # writes it never replicated), fan-outs cut short are sent again; then nothing is missing.
        assert tl_services.failover_repair()
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
    result = subprocess.run([sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
                             "print(settings.CELERY_BEAT_SCHEDULE['redis-failover-repair'])"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "'task': 'timelines.failover_repair'" in result.stdout  # beat looks for failovers on a cluster


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


@pytest.mark.django_db(transaction=True)
def test_the_slots_whose_master_changed_have_their_timelines_rebuilt_once(on_cluster, make_user, api):
    """Beat's check, between two slot maps: the slots recorded under another master (as after a
    failover) lose their cached timelines and move their generations on, one run at a time; the
    others keep theirs; the next reads rebuild from PostgreSQL."""
    author, readers = make_user(), [make_user() for _ in range(12)]
    for reader in readers:
        api(reader).post(f"/v1/users/{author.id}/follow")
    posted = post(api(author), "x")
    for reader in readers:
        assert ids(api(reader)) == [posted]
    assert tl_services.failover_repair() == set()  # the first run records the map
    now = core_redis.slot_masters()
    first, last, _ = next(r for r in now if r[0] <= key_slot(store.timeline_key(readers[0].id).encode()) <= r[1])
    store.slot_masters_record([(f, la, "a-master-that-failed" if f == first else n) for f, la, n in now])
    failed = [r for r in readers if first <= key_slot(store.timeline_key(r.id).encode()) <= last]
    kept = [r for r in readers if r not in failed]
    generations = {r.id: store.generation(user_id=r.id) for r in readers}
    assert failed and kept

    assert store.claim_once(name="failover-repair")  # another run is repairing
    assert tl_services.failover_repair() == set()
    assert all(store.exists(user_id=r.id) for r in readers)
    store.claim_release(name="failover-repair")
    counted = REGISTRY.get_sample_value("timeline_failover_slots_repaired_total") or 0
    assert tl_services.failover_repair() == set(range(first, last + 1))
    assert REGISTRY.get_sample_value("timeline_failover_slots_repaired_total") == counted + last - first + 1
    assert tl_services.failover_repair() == set()  # recorded: repaired once
    assert not any(store.exists(user_id=r.id) for r in failed)
    assert all(store.generation(user_id=r.id) > generations[r.id] for r in failed)
    assert all(store.exists(user_id=r.id) and store.generation(user_id=r.id) == generations[r.id] for r in kept)
    for reader in readers:
        assert scroll(api(reader)) == _truth(reader) == [posted]


@pytest.mark.django_db
def test_a_failover_of_the_pull_slot_turns_the_live_filter_off_and_drops_its_pulled_lists(on_cluster):
    """The ``{pull}`` keys' master changed: a live bit or a pull-epoch step may be lost, so the
    live-user filter is off (every follower addressed) until the reconciler marks every cached
    timeline again, the pull counters move on, and the pulled lists in those slots are dropped."""
    redis = core_redis.connection()
    pull = key_slot(keys.pull_seq_key().encode())
    first, last, _ = next(r for r in core_redis.slot_masters() if r[0] <= pull <= r[1])
    author = next(a for a in range(1, 10_000) if first <= key_slot(keys.author_key(a).encode()) <= last)
    store.author_merge(author_id=author, ids=[5, 3], complete=True)
    store.merge(user_id=7, ids=[], complete=True, generation=0)
    assert store.index_live() == 1
    assert store.live_only(user_ids=[7, 8]) == [7]  # the filter is on: 8 has no cached timeline
    counters = [int(redis.get(key) or 0) for key in (keys.pull_epoch_key(), keys.pull_seq_key())]
    assert tl_services.failover_repair() == set()
    store.slot_masters_record([(f, la, "a-master-that-failed" if f == first else n)
                               for f, la, n in core_redis.slot_masters()])

    assert pull in tl_services.failover_repair()
    assert store.live_only(user_ids=[7, 8]) == [7, 8]  # off: a lost bit must not skip a reader
    assert all(int(redis.get(key)) > before for key, before in zip(
        (keys.pull_epoch_key(), keys.pull_seq_key()), counters, strict=True))
    assert store.author_read(author_ids=[author]) == {author: None}
    assert store.index_live() is not None  # the reconciler's next run
    assert store.live_only(user_ids=[7, 8]) == [7]


def _replica_of(nodes, master: int) -> int:
    return next(port for port in nodes.ports if port != master and nodes.processes[port].poll() is None
                and int(nodes.client(port).info("replication").get("master_port", 0)) == master)


def _hold_replication(nodes, replica: int) -> None:
    """Cut the replica off its master and keep it off: it reconnects with a password
    the master refuses (the master then acknowledges writes the replica never gets)."""
    link = nodes.client(replica)
    link.config_set("masterauth", "not-the-password")
    link.client_kill_filter(_type="master")
    deadline = time.monotonic() + 10
    while link.info("replication")["master_link_status"] != "down":
        assert time.monotonic() < deadline, "the replica stays linked"
        time.sleep(0.05)


@pytest.mark.django_db(transaction=True)
def test_a_master_killed_mid_fanout_after_writes_its_replica_lacks_loses_no_delivery(
        settings, make_user, api, tmp_path):
    """The master holding some readers' timelines acknowledges fan-outs its replica never
    receives (replication held back), then is killed in the middle of a fan-out, and its
    replica is promoted. The fan-outs it acknowledged are gone from the cluster, though
    PostgreSQL, and the fan-out bookkeeping, say they were delivered. After the failover
    repair (beat's ``failover_repair``) and the reconciler, every reader's timeline, scrolled
    through the API, is PostgreSQL's: nothing missing, nothing twice."""
    with contextlib.ExitStack() as cleanup:
        nodes = start_redis_cluster(tmp_path, cleanup, replicas=1, node_timeout_ms=1000)
        saved = settings.REDIS_URL, settings.REDIS_CLUSTER
        settings.REDIS_URL, settings.REDIS_CLUSTER = nodes.url, True
        cleanup.callback(lambda: setattr(settings, "REDIS_URL", saved[0]))
        cleanup.callback(lambda: setattr(settings, "REDIS_CLUSTER", saved[1]))
        settings.FANOUT_BATCH_SIZE = 8
        author, readers = make_user(), [make_user() for _ in range(40)]
        for reader in readers:
            assert api(reader).post(f"/v1/users/{author.id}/follow").status_code == 200
        before = [post(api(author), f"replicated {i}") for i in range(2)]
        for reader in readers:
            assert ids(api(reader)) == before[::-1]  # cached, in slots on every master
        assert tl_tasks.failover_repair_task.delay().get() == 0  # the first run records the slot map
        client = core_redis.connection()
        victim = client.get_node_from_key(store.timeline_key(readers[0].id)).port
        on_victim = [r for r in readers if client.get_node_from_key(store.timeline_key(r.id)).port == victim]
        victim_id = nodes.client(victim).execute_command("CLUSTER", "MYID").decode()
        victim_slots = {slot for first, last, node_id in core_redis.slot_masters() if node_id == victim_id
                        for slot in range(first, last + 1)}
        replica = _replica_of(nodes, victim)
        _hold_replication(nodes, replica)

        acknowledged = post(api(author), "acknowledged, never replicated")
        assert all(ids(api(r), limit=1) == [acknowledged] for r in on_victim)
        offsets = [nodes.client(port).info("replication")["master_repl_offset"] for port in (victim, replica)]
        assert offsets[0] > offsets[1], offsets
        batches = []

        def kill_mid_fanout(sender, **kwargs):
            batches.append(kwargs["tweet_id"])
            if len(batches) == 2:
                nodes.kill(victim)

        fanout_batch_done.connect(kill_mid_fanout)
        try:
            post(api(author), "cut short")  # its fan-out (eager here) meets the dead master half-way
        finally:
            fanout_batch_done.disconnect(kill_mid_fanout)
        assert len(batches) >= 2 and nodes.processes[victim].poll() is not None  # a batch with no key there goes on
        with contextlib.suppress(Exception):
            nodes.client(replica).execute_command("CLUSTER", "FAILOVER", "FORCE")
        deadline = time.monotonic() + 30
        while replica not in nodes.masters():
            assert time.monotonic() < deadline, "the replica was not promoted"
            time.sleep(0.1)
        nodes.wait_ok()
        # The promoted replica lacks what its master acknowledged last.
        lost = [r for r in on_victim if acknowledged.encode() not in nodes.client(replica).lrange(
            store.timeline_key(r.id), 0, -1)]
        assert lost, "the replica got the writes: replication was not held"

        repaired = 0
        deadline = time.monotonic() + 30
        while not repaired:  # until the client, and the node asked, see the new master
            with contextlib.suppress(*core_redis.UNREACHABLE):
                repaired = tl_tasks.failover_repair_task.delay().get()
            assert time.monotonic() < deadline, "no failover seen"
            time.sleep(0.2)
        assert repaired == len(victim_slots)
        assert tl_tasks.failover_repair_task.delay().get() == 0  # seen once, repaired once
        tl_services.fanout_reconcile(older_than_seconds=0)
        for reader in readers:
            assert scroll(api(reader), limit=3) == _truth(reader)


def test_the_slots_that_moved_are_those_whose_master_changed():
    before = [(0, 5460, "a"), (5461, 10922, "b"), (10923, 16383, "c")]
    assert core_redis.slots_moved(before, before) == set()
    after = [(0, 5460, "a"), (5461, 10922, "d"), (10923, 16383, "c")]
    assert core_redis.slots_moved(before, after) == set(range(5461, 10923))
    resharded = [(0, 5000, "a"), (5001, 5460, "c"), (5461, 10922, "b"), (10923, 16383, "c")]
    assert core_redis.slots_moved(before, resharded) == set(range(5001, 5461))


@pytest.mark.django_db
def test_each_cluster_node_has_a_breaker_of_its_own(settings, tmp_path):
    """A frozen master (SIGSTOP: it accepts connections and never answers) costs timeouts
    only until its breaker opens; then calls for its slots are refused at once with
    ``CircuitOpen``, the other masters still answer, and once it is back a trial call
    closes its breaker."""
    with contextlib.ExitStack() as cleanup:
        nodes = start_redis_cluster(tmp_path, cleanup, node_timeout_ms=60_000)  # the cluster stays ok meanwhile
        saved = settings.REDIS_URL, settings.REDIS_CLUSTER, settings.REDIS_CLUSTER_OPTIONS
        cleanup.callback(lambda: setattr(settings, "REDIS_URL", saved[0]))
        cleanup.callback(lambda: setattr(settings, "REDIS_CLUSTER", saved[1]))
        cleanup.callback(lambda: setattr(settings, "REDIS_CLUSTER_OPTIONS", saved[2]))
        settings.REDIS_URL, settings.REDIS_CLUSTER = nodes.url, True
        settings.REDIS_CLUSTER_OPTIONS = {**saved[2], "socket_timeout": 0.5, "socket_connect_timeout": 0.5}
        settings.REDIS_BREAKER_FAILURES, settings.REDIS_BREAKER_COOLDOWN_SECONDS = 2, 1.0
        client = core_redis.connection()
        keys = {client.get_node_from_key(f"k{i}").port: f"k{i}" for i in range(100)}
        frozen = next(port for port in keys if port != nodes.ports[0])  # not the node REDIS_URL names
        others = [keys[port] for port in keys if port != frozen]
        for key in keys.values():
            client.set(key, 1)
        nodes.processes[frozen].send_signal(signal.SIGSTOP)
        cleanup.callback(lambda: nodes.processes[frozen].send_signal(signal.SIGCONT))
        failures = []
        for _ in range(3):
            with pytest.raises(core_redis.UNREACHABLE) as raised:
                client.get(keys[frozen])
            failures.append(raised.value)
        assert isinstance(failures[-1], breaker.CircuitOpen), failures  # refused without a try
        assert all(client.get(key) == b"1" for key in others)  # the other masters' breakers are closed
        nodes.processes[frozen].send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(*core_redis.UNREACHABLE):
                if client.get(keys[frozen]) == b"1":
                    break
            assert time.monotonic() < deadline, "the breaker never let a trial through"
            time.sleep(0.2)
