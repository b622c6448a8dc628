"""Reads of the timeline store that only the benchmark makes: they look without touching.

No TTL is refreshed and nothing is rebuilt, so measuring a timeline does not
keep it alive. Key names come from ``timelines.store.keys``.
"""
from dataclasses import dataclass

from core import redis as core_redis
from timelines.store import SENTINEL, keys


def heads(*, user_ids: list[int], count: int) -> dict[int, list[int]]:
    """The newest ``count`` ids of each of ``user_ids``' cached timelines ([] where none); one round trip."""
    pipe = core_redis.connection().pipeline(transaction=False)
    for uid in user_ids:
        pipe.lrange(keys.timeline_key(uid), 0, count - 1)
    return {uid: [int(x) for x in raw if x != SENTINEL]
            for uid, raw in zip(user_ids, pipe.execute(), strict=True)}


def cached_floors(*, user_ids: list[int]) -> dict[int, int]:
    """The oldest id of each of ``user_ids``' cached timelines that does not hold its whole
    range (pages older than it come from PostgreSQL); one round trip."""
    pipe = core_redis.connection().pipeline(transaction=False)
    for uid in user_ids:
        pipe.lindex(keys.timeline_key(uid), -1)
    return {uid: int(last) for uid, last in zip(user_ids, pipe.execute(), strict=True)
            if last is not None and last != SENTINEL}


@dataclass(frozen=True)
class MemoryUsage:
    """What one user's keys cost in Redis, in bytes (``MEMORY USAGE``, every element counted)."""

    timeline_bytes: int  # 0: not cached
    timeline_entries: int  # the closing sentinel included
    graph_bytes: int  # the cached follow graph
    generation_bytes: int


def memory_usage(*, user_ids: list[int]) -> dict[int, MemoryUsage]:
    """The memory each of ``user_ids``' timeline, graph and generation keys takes; one round trip."""
    pipe = core_redis.connection().pipeline(transaction=False)
    for uid in user_ids:
        pipe.memory_usage(keys.timeline_key(uid), samples=0)
        pipe.llen(keys.timeline_key(uid))
        pipe.memory_usage(keys.graph_key(uid), samples=0)
        pipe.memory_usage(keys.generation_key(uid), samples=0)
    replies = [x or 0 for x in pipe.execute()]
    return {uid: MemoryUsage(*replies[4 * i:4 * i + 4]) for i, uid in enumerate(user_ids)}
