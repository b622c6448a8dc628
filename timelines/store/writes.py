"""Writes to timelines and pulled lists: sorted inserts, merges of rebuilt runs, follow changes.

Every write goes through a script that first checks the key exists (a rebuild
excepted), so a user who stopped reading (the key expired after
``TIMELINE_INACTIVE_DAYS``) never gets a timeline back by a side door; only a
read rebuilds one. Inserts trim a list that passes ``TIMELINE_MAX_ENTRIES`` by
more than ``TIMELINE_TRIM_SLACK``; merges cut at the cap.
"""
import time

from django.conf import settings

from core import redis as core_redis
from tweets import snowflake

from . import keys, scripts

_INSERT = scripts.load("insert", uses=("older",), cross_slot=True)  # idempotent, a key at a time
_COMBINE = scripts.load("combine", uses=("older",))
_GENERATION_ADVANCE = scripts.load("generation_advance", uses=("advance",))
_PULL_SEQ_ADVANCE = scripts.load("pull_seq_advance", uses=("advance",))
_PULLER_ADD = scripts.load("puller_add")
# A missing high-water mark starts at the first id minted this far in the future: every
# id a list can hold was minted before it, by a clock at most this far ahead of ours.
MARK_FLOOR_AHEAD_MS = 10 * 60 * 1000


# --- Timelines --------------------------------------------------------------------


def insert(*, user_ids: list[int], tweet_id: int) -> int:
    """Insert one tweet id into the live timelines of ``user_ids``; returns how many took it."""
    return insert_lists(lists=keys.timeline_keys(user_ids), tweet_id=tweet_id)


def insert_lists(*, lists: list[str], tweet_id: int, client=None) -> int:
    """Insert one tweet id into the lists named (those that exist); how many took it. ``client``:
    another connection than the product's (the benchmark's script ceiling)."""
    client = client or core_redis.connection()
    if core_redis.on_cluster(client):
        # Once per node and FANOUT_SCRIPT_KEYS lists, the lists of many slots in one call,
        # without marks: a fan-out spreads over thousands of slots with a list or two each,
        # where a slot's mark would cost a GET and a SET to save one LINDEX.
        return sum(_INSERT.per_node(keys=lists, args=[*_insert_args(tweet_id), ""], client=client,
                                    chunk=settings.FANOUT_SCRIPT_KEYS))
    calls = insert_calls(lists=lists, tweet_id=tweet_id)
    if len(calls) == 1:
        return _INSERT(keys=calls[0][0], args=calls[0][1], client=client)
    return sum(_INSERT.many(calls, client=client))


def insert_calls(*, lists: list[str], tweet_id: int, cluster: bool = False) -> list[tuple[list, list]]:
    """The insert script's calls, ``(keys, args)`` each, that put ``tweet_id`` into ``lists``
    on one server: one call per FANOUT_SCRIPT_KEYS lists, led by the server's high-water mark,
    which ``insert_lists`` sends pipelined (one round trip, and no call holds the server for
    long). ``cluster``: one call per slot (and chunk), without marks."""
    chunk = settings.FANOUT_SCRIPT_KEYS
    groups = [group[i : i + chunk] for group in core_redis.slot_groups(lists, cluster=cluster)
              for i in range(0, len(group), chunk)]
    if cluster:
        return [(group, [*_insert_args(tweet_id), ""]) for group in groups]
    floor = mark_floor()
    return [([keys.mark_key(group[0]), *group], [*_insert_args(tweet_id), floor, len(group)]) for group in groups]


def _insert_args(tweet_id: int) -> list:
    return [tweet_id, settings.TIMELINE_MAX_ENTRIES, settings.TIMELINE_TRIM_SLACK]


def mark_floor() -> int:
    """Where a missing high-water mark starts: above every id minted so far."""
    return snowflake.lowest_id_at(int(time.time() * 1000) + MARK_FLOOR_AHEAD_MS)


def _combine(*, key: str, user_id: int | None, mode: str, ids: list[int], complete: bool,
             generation: int | None) -> int:
    # The list and the user's generation share the user's hash tag (one slot).
    return _COMBINE(
        keys=[key, keys.generation_key(user_id) if user_id is not None else key, keys.mark_key(key)],
        args=[mode, settings.TIMELINE_MAX_ENTRIES, keys.ttl_seconds(), "1" if complete else "0",
              "" if generation is None else generation, *ids],
    )


def merge(*, user_id: int, ids: list[int], complete: bool, generation: int, replace: bool = False) -> bool:
    """Merge a rebuilt run of ids into the user's timeline, creating it if absent
    (``replace``: overwrite it). Returns False, writing nothing, if the follow
    graph changed since ``generation``."""
    written = _combine(key=keys.timeline_key(user_id), user_id=user_id, mode="replace" if replace else "rebuild",
                       ids=ids, complete=complete, generation=generation)
    return written >= 0


def backfill(*, user_id: int, ids: list[int], complete: bool, generation: int) -> bool:
    """Add a new followee's ids (all of them, or the newest when not ``complete``)
    to a cached timeline. False if the follow graph moved on since ``generation``."""
    return _combine(key=keys.timeline_key(user_id), user_id=user_id, mode="backfill", ids=ids,
                    complete=complete, generation=generation) != -1


def remove(*, user_id: int, ids: list[int], generation: int) -> None:
    """Drop a former followee's ids from a cached timeline (unless the graph moved on since)."""
    if ids:
        _combine(key=keys.timeline_key(user_id), user_id=user_id, mode="remove", ids=ids, complete=False,
                 generation=generation)


def generation(*, user_id: int) -> int:
    return int(core_redis.connection().get(keys.generation_key(user_id)) or 0)


def generation_advance(*, user_id: int, drop_timeline: bool = False) -> int:
    """Move the user's follow generation on (invalidating the cached graph and
    in-flight rebuilds) and, if asked, drop the timeline. Returns the new generation."""
    return _GENERATION_ADVANCE(
        keys=[keys.timeline_key(user_id), keys.generation_key(user_id)],
        args=[2 * keys.ttl_seconds(), "1" if drop_timeline else "0"],
    )


def exists(*, user_id: int) -> bool:
    return bool(core_redis.connection().exists(keys.timeline_key(user_id)))


def existing(*, user_ids: list[int]) -> list[int]:
    """Those of ``user_ids`` whose timeline is cached (one round trip)."""
    pipe = core_redis.connection().pipeline(transaction=False)
    for uid in user_ids:
        pipe.exists(keys.timeline_key(uid))
    return [uid for uid, found in zip(user_ids, pipe.execute(), strict=True) if found]


def evict(*, user_id: int) -> None:
    """Drop a cached timeline (an operator's or a test's eviction; the next read rebuilds it)."""
    core_redis.connection().delete(keys.timeline_key(user_id))


# --- Celebrity pull -----------------------------------------------------------------
# A celebrity's tweets are not pushed: each author with pulled tweets has a list of
# them (a timeline's shape and rules), which readers merge in by id.


def puller_add(*, author_id: int) -> None:
    """Note that ``author_id`` has pulled tweets; the first time, every cached graph goes stale."""
    _PULLER_ADD(keys=[keys.pullers_key(), keys.pull_epoch_key()], args=[author_id])


def author_insert(*, author_id: int, tweet_id: int) -> int:
    """Insert a pulled tweet into its author's list, if that list is cached."""
    written = insert_lists(lists=[keys.author_key(author_id)], tweet_id=tweet_id)
    _pull_seq_advance()  # even if the list was not cached: a reader's copy of it lacks the tweet
    return written


def author_merge(*, author_id: int, ids: list[int], complete: bool) -> None:
    """Merge a run of the author's pulled ids, read from PostgreSQL, into their list (creating it)."""
    _combine(key=keys.author_key(author_id), user_id=None, mode="rebuild", ids=ids, complete=complete,
             generation=None)
    _pull_seq_advance()


def _pull_seq_advance() -> None:
    _PULL_SEQ_ADVANCE(keys=[keys.pull_seq_key()], args=[])
