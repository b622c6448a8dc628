"""The same fan-out on a 3-master Redis Cluster and on one server: ``insert_lists`` timed side by side.

A fan-out writes one tweet id into thousands of cached timelines through the
insert script (``timelines.store.writes.insert_lists``, the product's code path).
:func:`measure` starts a throwaway 3-master cluster and one standalone server,
both ``redis-server`` processes of the same binary on spare loopback ports
(``stack.redis_cluster``), fills the same timelines into each (copies of real
cached ones when a source is given, as the script ceiling's are, else
synthetic lists of the same shape), and times the insert of one new id into
all of them on each, interleaved round by round (which goes first alternates),
so a busy moment of the machine costs both alike. It reports medians, the
script calls each fan-out made, and the cluster's median over the one
server's. Beside them it times the per-slot path (one call per hash slot,
what a cluster fan-out sent before its calls went per node) on the same keys.

``make bench`` runs it in its ``cluster`` phase on copies of the bench's cached
timelines; ``python -m bench.cluster_fanout`` runs it alone on synthetic ones.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# Synthetic timelines: about the 6.6 KB of the bench's cached timelines (19-digit ids, 11 B an entry).
SYNTHETIC_ENTRIES = 600
FILL_CHUNK = 500


def synthetic_lists(count: int, entries: int = SYNTHETIC_ENTRIES) -> list[list[bytes]]:
    """``count`` lists of ``entries`` Snowflake ids each, newest first, as timelines hold them."""
    from tweets import snowflake

    newest = snowflake.lowest_id_at(time.time_ns() // 1_000_000 - 60_000)
    step = 1 << 22  # a millisecond apart
    return [[str(newest - (i % 7 + k) * step).encode() for k in range(entries)] for i in range(count)]


def read_lists(source, keys: list[str]) -> list[list[bytes]]:
    """The contents of the lists named, from ``source`` (LRANGE, pipelined); missing ones left out."""
    lists = []
    for i in range(0, len(keys), FILL_CHUNK):
        pipe = source.pipeline(transaction=False)
        for key in keys[i : i + FILL_CHUNK]:
            pipe.lrange(key, 0, -1)
        lists += [items for items in pipe.execute() if items]
    return lists


def fill(target, keys: list[str], lists: list[list[bytes]]) -> None:
    """Write ``lists`` under ``keys`` (cycling through them if there are fewer lists than keys)."""
    target.flushdb()
    for i in range(0, len(keys), FILL_CHUNK):
        pipe = target.pipeline(transaction=False)
        for j, key in enumerate(keys[i : i + FILL_CHUNK], i):
            pipe.rpush(key, *lists[j % len(lists)])
        pipe.execute()


def _script_calls(clients: list) -> int:
    """Script calls the servers ran so far (``INFO commandstats``)."""
    return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))
               for stats in (client.info("commandstats") for client in clients) for name in ("evalsha", "eval"))


def measure(*, timelines: int = 10_000, rounds: int = 15, lists: list[list[bytes]] | None = None,
            say: Callable[[str], None] = print, before_timing: Callable[[], None] = lambda: None) -> dict:
    """Start the servers, fill ``timelines`` timelines into each (from ``lists``, else synthetic ones),
    time ``rounds`` fan-outs into all of them on each, interleaved, and stop the servers. The
    milliseconds of each side (median, min, max), the script calls of one fan-out on each, and
    ``ratio``: the cluster's median over the one server's. ``before_timing`` runs once the
    servers are filled (the bench waits for a quiet machine there)."""
    from django.conf import settings
    from redis.cluster import RedisCluster

    from bench import ceilings
    from stack.redis_cluster import start_redis_cluster, start_redis_server
    from timelines.store import keys as store_keys
    from timelines.store import writes
    from tweets import snowflake

    names = store_keys.timeline_keys(list(range(1, timelines + 1)))  # users' own hash tags: spread over slots
    lists = lists or synthetic_lists(min(timelines, 1000))
    with contextlib.ExitStack() as cleanup:
        where = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="cluster-fanout-")))
        say(f"starting one redis-server and a Redis Cluster of 3 masters in {where} ...")
        one = start_redis_server(where / "one", cleanup)
        nodes = start_redis_cluster(where / "cluster", cleanup)
        cluster = RedisCluster.from_url(nodes.url)
        cleanup.callback(cluster.close)
        say(f"filling {timelines:,} timelines into each ...")
        fill(one, names, lists)
        ceilings.copy_timelines(one, cluster, names)  # the same bytes: DUMP from the one, RESTORE into the cluster
        sizes = [one.memory_usage(key) or 0 for key in names[:200]]
        masters = [nodes.client(port) for port in nodes.masters()]
        first = snowflake.lowest_id_at(time.time_ns() // 1_000_000 + 60_000)  # newer than every entry

        def per_slot(lists: list[str], tweet_id: int, client) -> int:  # the cluster's path before per_node
            return sum(writes._INSERT.many(writes.insert_calls(lists=lists, tweet_id=tweet_id, cluster=True),
                                           client=client))

        sides: dict[str, tuple[Callable[..., int], object, list]] = {
            "one_server": (writes.insert_lists, one, [one]),
            "cluster": (writes.insert_lists, cluster, masters),
            "cluster_per_slot": (per_slot, cluster, masters)}
        spent: dict[str, list[float]] = {name: [] for name in sides}
        calls: dict[str, list[int]] = {name: [] for name in sides}
        tweet = iter(range(first, first + 10 * rounds + 10))
        for insert, client, _ in sides.values():  # the scripts loaded, the slot map read: not timed
            insert(lists=names, tweet_id=next(tweet), client=client)
        before_timing()
        for r in range(1, rounds + 1):
            order = list(sides) if r % 2 else list(sides)[::-1]
            for name in order:
                insert, client, servers = sides[name]
                tweet_id, counted = next(tweet), _script_calls(servers)
                began = time.perf_counter()
                taken = insert(lists=names, tweet_id=tweet_id, client=client)
                spent[name].append(1000 * (time.perf_counter() - began))
                calls[name].append(_script_calls(servers) - counted)
                if taken != timelines:
                    raise RuntimeError(f"{name}: the insert took {taken:,} of {timelines:,} timelines")
            say(f"  round {r}/{rounds}: one server {spent['one_server'][-1]:.1f} ms, cluster "
                f"{spent['cluster'][-1]:.1f} ms (per slot {spent['cluster_per_slot'][-1]:.1f} ms)")
        one_ms, cluster_ms = (statistics.median(spent[name]) for name in ("one_server", "cluster"))
        result = {"timelines": timelines, "mean_bytes": round(statistics.mean(sizes)), "rounds": rounds,
                  "chunk": settings.FANOUT_SCRIPT_KEYS, "distinct_lists": min(len(lists), timelines),
                  "redis": one.info("server")["redis_version"],
                  **{f"{name}_ms": {"median": round(statistics.median(ms), 2), "min": round(min(ms), 2),
                                    "max": round(max(ms), 2)} for name, ms in spent.items()},
                  **{f"{name}_calls": round(statistics.median(n)) for name, n in calls.items()},
                  "ratio": round(cluster_ms / one_ms, 3),
                  "per_slot_ratio": round(statistics.median(spent["cluster_per_slot"]) / one_ms, 3)}
        say(f"  {timelines:,} timelines ({result['mean_bytes']:,} B each), median of {rounds}: one server "
            f"{one_ms:.1f} ms ({result['one_server_calls']} script calls), 3-master cluster {cluster_ms:.1f} ms "
            f"({result['cluster_calls']} calls): {result['ratio']:.2f}x; per slot "
            f"{result['cluster_per_slot_ms']['median']:.1f} ms ({result['cluster_per_slot_calls']:,} calls)")
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timelines", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    options = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    import django

    django.setup()
    measure(timelines=options.timelines, rounds=options.rounds)


if __name__ == "__main__":
    main()
