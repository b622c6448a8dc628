"""What each remedy for a Redis Cluster failover's lost writes costs, measured on a
throwaway cluster: ``python -m bench.cluster_failover`` (docs/scaling.md, "Failover").

Starts three masters with a replica each (``stack.redis_cluster``), caches
``--timelines`` home timelines, then measures:

- a fan-out batch (``store.insert`` into ``--batch`` cached timelines) as the
  product sends it, and the same pipeline with ``WAIT 1 <timeout>`` queued after
  each node's share (every write held until a replica has it: the other remedy);
- the same with one replica killed (``WAIT`` then waits out its timeout on every batch);
- what the product does instead: beat's check that finds no change (``CLUSTER
  SHARDS`` and the recorded map), and the repair of one master's slots after a
  failover (``store.slots_forget``: a SCAN of that master and a script per user).

Prints medians and p90s; nothing is written anywhere else.
"""
import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path


def _timed(run, times: int) -> list[float]:
    spent = []
    for _ in range(times):
        began = time.perf_counter()
        run()
        spent.append(1000 * (time.perf_counter() - began))
    return spent


def _summary(label: str, ms: list[float]) -> None:
    ms = sorted(ms)
    print(f"{label:<58} median {statistics.median(ms):8.2f} ms   p90 {ms[int(0.9 * (len(ms) - 1))]:8.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1000, help="cached timelines a fan-out batch writes")
    parser.add_argument("--timelines", type=int, default=30_000, help="cached timelines in the cluster")
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--wait-timeout-ms", type=int, default=100)
    options = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    os.environ.setdefault("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")  # a cluster needs one
    import django

    django.setup()
    from django.conf import settings

    from core import redis as core_redis
    from stack.redis_cluster import start_redis_cluster
    from timelines import store
    from timelines.store import keys
    from timelines.store.writes import _INSERT, insert_calls

    with contextlib.ExitStack() as cleanup:
        print("starting a Redis Cluster of 3 masters and 3 replicas ...", flush=True)
        nodes = start_redis_cluster(Path(cleanup.enter_context(tempfile.TemporaryDirectory())), cleanup, replicas=1)
        settings.REDIS_URL, settings.REDIS_CLUSTER, settings.REDIS_KEY_PREFIX = nodes.url, True, "bench:"
        users = list(range(1, options.timelines + 1))
        print(f"caching {len(users)} timelines ...", flush=True)
        for i in range(0, len(users), 1000):
            pipe = core_redis.connection().pipeline(transaction=False)
            for uid in users[i : i + 1000]:
                pipe.rpush(keys.timeline_key(uid), *range(200, 0, -1))
            pipe.execute()
        batch = users[: options.batch]
        tweet = iter(range(10**6, 10**7))
        store.insert(user_ids=batch, tweet_id=next(tweet))  # loads the script on every master

        acks: list[list[int]] = []

        def insert_waiting() -> None:
            client = core_redis.connection()
            calls = insert_calls(lists=keys.timeline_keys(batch), tweet_id=next(tweet), cluster=True)
            pipe = client.pipeline(transaction=False)
            for call_keys, args in calls:
                _INSERT.queue(pipe, keys=call_keys, args=args)
            for node in {client.get_node_from_key(k[0]).name: client.get_node_from_key(k[0])
                         for k, _ in calls}.values():
                pipe.execute_command("WAIT", 1, options.wait_timeout_ms, target_nodes=node)
            acks.append(pipe.execute()[len(calls):])  # each node's replicas that acknowledged in time

        sent, waited = [], []
        for _ in range(options.runs):  # alternately, so a busy moment of the machine costs both alike
            sent += _timed(lambda: store.insert(user_ids=batch, tweet_id=next(tweet)), 1)
            waited += _timed(insert_waiting, 1)
        _summary(f"fan-out batch of {len(batch)}, as sent", sent)
        assert all(ack == 1 for node_acks in acks for ack in node_acks), acks
        _summary(f"fan-out batch of {len(batch)}, WAIT 1 after each node's share", waited)
        replica = next(port for port in nodes.ports if nodes.client(port).info("replication")["role"] == "slave")
        nodes.kill(replica)
        acks.clear()
        _summary(f"... the same with one replica down (WAIT gives up at {options.wait_timeout_ms} ms)",
                 _timed(insert_waiting, 10))
        assert all(0 in node_acks for node_acks in acks), acks

        store.slot_masters_record(core_redis.slot_masters())
        _summary("failover check, no change (CLUSTER SHARDS + recorded map)", _timed(
            lambda: core_redis.slots_moved(store.slot_masters_seen(), core_redis.slot_masters()), options.runs))
        master = core_redis.connection().get_node_from_key(keys.timeline_key(1))
        slots = {slot for slot in range(16384) if core_redis.connection().nodes_manager.get_node_from_slot(slot).name
                 == master.name}
        forgotten = []
        spent = _timed(lambda: forgotten.append(store.slots_forget(slots=slots)), 1)
        _summary(f"repair of one master's slots ({forgotten[0].timelines} timelines dropped)", spent)


if __name__ == "__main__":
    main()
