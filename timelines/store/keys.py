"""Every Redis key the timeline store writes, by name, and the idle TTL they share.

All keys carry ``REDIS_KEY_PREFIX``. A user's timeline, generation and cached
graph share the user's hash tag (``{user_id}``: one cluster slot, so a script
may name them together); the celebrity-pull keys and the live-timeline bitmaps
share the tag ``{pull}``, which a reader's first round trip reaches already.
"""
from django.conf import settings

from core import redis as core_redis


def prefixed(name: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}{name}"


def ttl_seconds() -> int:
    """How long an unread timeline (and the keys kept beside it) lives: ``TIMELINE_INACTIVE_DAYS``."""
    return settings.TIMELINE_INACTIVE_DAYS * 24 * 3600


def timeline_key(user_id: int) -> str:
    """The user's home timeline: a LIST of decimal tweet ids, newest first."""
    return timeline_keys([user_id])[0]


def timeline_keys(user_ids: list[int]) -> list[str]:
    """``timeline_key`` of each of ``user_ids``, built in one go (a fan-out names tens of thousands)."""
    prefix = settings.REDIS_KEY_PREFIX
    return [f"{prefix}tl:{{{uid}}}" for uid in user_ids]


def mark_key(key: str) -> str:
    """The high-water mark of the lists in ``key``'s slot: an id none of them holds anything
    newer than (see ``lua/insert.lua``), one for the server. A cluster's fan-out uses none
    (``writes.insert_lists``): there this names a key in the list's slot that stays absent."""
    if core_redis.is_cluster():
        return prefixed(f"tl-mark:{key[key.index('{'):]}")
    return prefixed("tl-mark")


def author_key(author_id: int) -> str:
    """The author's pulled tweets (celebrity pull), newest first."""
    head, tail = author_key_affixes()
    return f"{head}{author_id}{tail}"


def author_key_affixes() -> tuple[str, str]:
    """What ``author_key`` puts before and after the author's id (for a script that makes the keys)."""
    return prefixed("ut:{"), "}"


def generation_key(user_id: int) -> str:
    """The user's follow generation: moves on with every follow change."""
    return prefixed(f"tlg:{{{user_id}}}")


def graph_key(user_id: int) -> str:
    """The user's cached follow graph, packed (see ``graph``)."""
    # "fg:" held the decimal layout, so code still reading that never meets this one.
    return prefixed(f"fgp:{{{user_id}}}")


def progress_key(tweet_id: int) -> str:
    """A fan-out's outstanding batches (a HASH of ``lo:hi`` follower-id ranges)."""
    return prefixed(f"fo:{tweet_id}")


def once_key(name: str) -> str:
    """A marker that a side effect named ``name`` happened (see ``fanout.claim_once``)."""
    return prefixed(f"once:{name}")


# The pull keys share one slot (the hash tag ``{pull}``): ``puller_add`` updates two together.
def pullers_key() -> str:
    """The SET of authors who have pulled tweets."""
    return prefixed("pullers:{pull}")


def pull_epoch_key() -> str:
    """Moves on when an author first has a pulled tweet: every cached graph goes stale."""
    return prefixed("pull-epoch:{pull}")


def pull_seq_key() -> str:
    """Moves on with every write to a pulled list (see ``process_cache``)."""
    return prefixed("pull-seq:{pull}")


def live_key(period: int) -> str:
    """The live-timeline bitmap of one period (see ``live``)."""
    return prefixed(f"tl-live:{period}:{{pull}}")


def live_indexed_key() -> str:
    """The flag ``live.index_live`` sets once every cached timeline is marked."""
    return prefixed("tl-live-indexed:{pull}")


def slot_masters_key() -> str:
    """The cluster's slot map as ``failover_repair`` last saw it (``recovery``)."""
    return prefixed("slot-masters")
