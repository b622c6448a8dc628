"""Writes to timelines and pulled lists: sorted inserts, merges of rebuilt runs, follow changes.

Every write goes through a script that first checks the key exists (a rebuild
excepted), so a user who stopped reading (the key expired after
``TIMELINE_INACTIVE_DAYS``) never gets a timeline back by a side door; only a
read rebuilds one. Inserts trim a list that passes ``TIMELINE_MAX_ENTRIES`` by
more than ``TIMELINE_TRIM_SLACK``; merges cut at the cap.
"""
from django.conf import settings

from core import redis as core_redis

from . import keys, scripts

_INSERT = scripts.load("insert", uses=("older",), cross_slot=True)  # idempotent, a key at a time
_COMBINE = scripts.load("combine", uses=("older",))
_GENERATION_ADVANCE = scripts.load("generation_advance", uses=("advance",))
_PULL_SEQ_ADVANCE = scripts.load("pull_seq_advance", uses=("advance",))
_PULLER_ADD = scripts.load("puller_add")


# --- Timelines --------------------------------------------------------------------


def insert(*, user_ids: list[int], tweet_id: int) -> int:
    """Insert one tweet id into the live timelines of ``user_ids``; returns how many took it."""
    return insert_lists(lists=keys.timeline_keys(user_ids), tweet_id=tweet_id)


def insert_lists(*, lists: list[str], tweet_id: int, client=None) -> int:
    """Insert one tweet id into the lists named (those that exist); how many took it. ``client``:
    another connection than the product's (the benchmark's script ceiling)."""
    # One script call per FANOUT_SCRIPT_KEYS keys (on a cluster, per node: the keys of many
    # slots in one call), all pipelined: one round trip per server, and no call holds a
    # server for long.
    return sum(_INSERT.per_node(
        keys=lists, args=[tweet_id, settings.TIMELINE_MAX_ENTRIES, settings.TIMELINE_TRIM_SLACK],
        client=client, chunk=settings.FANOUT_SCRIPT_KEYS))


def _combine(*, key: str, user_id: int | None, mode: str, ids: list[int], complete: bool,
             generation: int | None) -> int:
    # The list and the user's generation share the user's hash tag (one slot).
    return _COMBINE(
        keys=[key, keys.generation_key(user_id) if user_id is not None else key],
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
