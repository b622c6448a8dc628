"""The delivery stage's yardsticks: the production insert script, and pipelined LPUSH, on real timelines.

A fan-out writes one tweet id into thousands of distinct, cold timelines of a
few kilobytes each, through a script that reads each list's head first. Its
fair ceiling is that same script called as fast as one client can call it, on
timelines shaped like the real ones, with nothing else in the way (no Celery,
no PostgreSQL, no follower read): :func:`script_ceiling`. Beside it,
:func:`lpush_ceiling` pushes onto the same keys with pipelined LPUSH, the
cheapest write a list has. Both run on copies of real cached timelines in a
database of their own (:func:`copy_timelines`), so the product's timelines,
and the memory the benchmark weighs, are left as they were.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from timelines.store import writes
from tweets import snowflake

COPY_CHUNK = 500


def copy_timelines(source, target, keys: list[str]) -> list[str]:
    """Copy the lists named from ``source`` into ``target`` (DUMP and RESTORE, pipelined): the keys copied."""
    target.flushdb()
    copied = []
    for i in range(0, len(keys), COPY_CHUNK):
        chunk = keys[i : i + COPY_CHUNK]
        read = source.pipeline(transaction=False)
        for key in chunk:
            read.dump(key)
        write = target.pipeline(transaction=False)
        for key, dumped in zip(chunk, read.execute(), strict=True):
            if dumped is not None:  # expired since it was listed
                write.restore(key, 0, dumped, replace=True)
                copied.append(key)
        write.execute()
    return copied


def _timelines_per_second(write_round: Callable[[int], None], keys: list[str], rounds: int) -> float:
    """``write_round(tweet_id)`` ``rounds`` times, each with a newer id: timelines written a second."""
    first = snowflake.lowest_id_at(time.time_ns() // 1_000_000 + 60_000)  # newer than anything in the lists
    started = time.perf_counter()
    for r in range(rounds):
        write_round(first + r)
    return rounds * len(keys) / (time.perf_counter() - started)


def script_ceiling(client, keys: list[str], rounds: int) -> float:
    """Timelines a second the production insert script takes from one client (``writes.insert_lists``:
    ``FANOUT_SCRIPT_KEYS`` keys a call, every call of a round in one pipelined round trip)."""
    def write_round(tweet_id: int) -> None:
        taken = writes.insert_lists(lists=keys, tweet_id=tweet_id, client=client)
        if taken != len(keys):
            raise RuntimeError(f"the insert script took {taken} of {len(keys)} timelines")

    return _timelines_per_second(write_round, keys, rounds)


def lpush_ceiling(client, keys: list[str], rounds: int) -> float:
    """Timelines a second pipelined LPUSH takes from one client on the same keys (one round trip a round)."""
    def write_round(tweet_id: int) -> None:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.lpush(key, tweet_id)
        pipe.execute()

    return _timelines_per_second(write_round, keys, rounds)
