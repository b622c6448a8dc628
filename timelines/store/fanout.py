"""Fan-out bookkeeping: a large fan-out's outstanding batches, and side effects done once.

A fan-out cut into batches records them in ``fo:{tweet_id}`` (a HASH of
``lo:hi`` follower-id ranges) once; each batch written is struck off, and the
one that strikes off the last learns it finished the fan-out. ``once:{name}``
markers let the reconciler restart a late fan-out at most once per period (and,
released when done, let one failover repair run at a time).
"""
from core import redis as core_redis

from . import keys, scripts

_PROGRESS_INIT = scripts.load("progress_init")
_PROGRESS_DONE = scripts.load("progress_done")


def progress_init(*, tweet_id: int, batches: list[str]) -> bool:
    """Record a fan-out's batches; True if this call did (False: already recorded)."""
    return bool(_PROGRESS_INIT(keys=[keys.progress_key(tweet_id)], args=[keys.ttl_seconds(), *batches]))


def progress_done(*, tweet_id: int, batch: str) -> bool:
    """Mark one batch written; True if it was the last outstanding one."""
    return bool(_PROGRESS_DONE(keys=[keys.progress_key(tweet_id)], args=[batch]))


def progress_pending(*, tweet_id: int) -> list[str] | None:
    """The batches of a fan-out still outstanding (None: none recorded, or all done)."""
    batches = core_redis.connection().hkeys(keys.progress_key(tweet_id))
    return [b.decode() for b in batches] or None


def claim_once(*, name: str, ttl: int = 24 * 3600) -> bool:
    """True the first time ``name`` is claimed (within ``ttl``): makes a side effect happen once."""
    return bool(core_redis.connection().set(keys.once_key(name), 1, nx=True, ex=ttl))


def claim_release(*, name: str) -> None:
    """Give a claim up before its ``ttl``: used as a lock, it lets the next claimer in."""
    core_redis.connection().delete(keys.once_key(name))
