"""After a Redis Cluster failover: forget what a promoted replica may have lost.

Replication is asynchronous, so a master killed just after acknowledging
writes can take them with it: the replica promoted in its place holds the
master's data *up to some instant*, and any write after that (a fan-out's
insert, a follow's backfill, a rebuild, a reader's live bit) is gone, while
PostgreSQL, the fan-out bookkeeping and the follow records all say it was
done. A cached list missing an id is no longer gapless, and nothing would
notice. So the store forgets, in the slots whose master changed, everything a
lost suffix of writes could have left wrong, and lets the usual paths build it
again from PostgreSQL:

- each user's generation moves on and their timeline is dropped
  (``generation_advance`` with ``drop_timeline``): the next read rebuilds it;
  the cached graph and any rebuild in flight, read at the old generation, are
  discarded;
- pulled lists are dropped (rebuilt on a reader's demand), and the pull
  sequence moves on (web processes read their copies again);
- if the slot of ``{pull}`` is among them, the live-user filter goes off until
  the reconciler marks every cached timeline again (a lost live bit would make
  a large fan-out skip a reader whose timeline sits on a healthy master), and
  the pull epoch moves on (a lost first pulled tweet of an author would leave
  cached graphs without that author).

The slot map last seen is kept in Redis (``slot-masters``); a repair that fails
half-way leaves it as it was, so the next one does the whole again.
"""
import logging
import re
from dataclasses import dataclass

from django.conf import settings
from redis.crc import key_slot

from core import redis as core_redis

from . import keys, scripts

logger = logging.getLogger(__name__)

_GENERATION_ADVANCE = scripts.load("generation_advance", uses=("advance",))
_PULL_RESET = scripts.load("pull_reset", uses=("advance",))
_PULL_SEQ_ADVANCE = scripts.load("pull_seq_advance", uses=("advance",))
_BATCH = 1000  # users (scripts) or keys per round trip


@dataclass(frozen=True)
class Forgotten:
    """What ``slots_forget`` dropped."""

    timelines: int  # users whose generation moved on and timeline was dropped
    pulled_lists: int
    pull_keys: bool  # whether the ``{pull}`` keys were reset


def slot_masters_seen() -> core_redis.SlotMap | None:
    """The slot map recorded by ``slot_masters_record`` (None: none yet)."""
    raw = core_redis.connection().get(keys.slot_masters_key())
    if raw is None:
        return None
    ranges = []
    for part in raw.decode().split(","):
        span, _, node_id = part.partition(":")
        first, _, last = span.partition("-")
        ranges.append((int(first), int(last), node_id))
    return ranges


def slot_masters_record(slot_map: core_redis.SlotMap) -> None:
    core_redis.connection().set(
        keys.slot_masters_key(), ",".join(f"{first}-{last}:{node_id}" for first, last, node_id in slot_map))


def _glob(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _tagged_ids(name: str, slots: set[int]) -> set[int]:
    """The ids in the tags of the keys ``<prefix><name>:{<id>}`` lying in ``slots``."""
    head = f"{settings.REDIS_KEY_PREFIX}{name}:{{"
    return {int(key[len(head) : -1]) for key in core_redis.scan_slots(f"{_glob(head)}*}}", slots)}


def slots_forget(*, slots: set[int]) -> Forgotten:
    """Forget what the store holds in ``slots`` that a lost suffix of writes could have
    left wrong (the module's docstring), so it is built again from PostgreSQL."""
    users = sorted(set().union(*(_tagged_ids(name, slots) for name in ("tl", "tlg", "fgp"))))
    logged = 0
    for i in range(0, len(users), _BATCH):
        _GENERATION_ADVANCE.many([([keys.timeline_key(uid), keys.generation_key(uid)],
                                   [2 * keys.ttl_seconds(), "1"]) for uid in users[i : i + _BATCH]])
        done = min(i + _BATCH, len(users))
        if done == len(users) or done - logged >= max(len(users) // 10, _BATCH):  # every tenth
            logger.info("failover repair: %s of %s timelines dropped", done, len(users))
            logged = done
    authors = sorted(_tagged_ids("ut", slots))
    for i in range(0, len(authors), _BATCH):
        core_redis.delete([keys.author_key(author_id) for author_id in authors[i : i + _BATCH]])
    pull = key_slot(keys.pull_seq_key().encode()) in slots
    if pull:
        _PULL_RESET(keys=[keys.live_indexed_key(), keys.pull_epoch_key(), keys.pull_seq_key()], args=[])
    elif authors:
        _PULL_SEQ_ADVANCE(keys=[keys.pull_seq_key()], args=[])
    return Forgotten(timelines=len(users), pulled_lists=len(authors), pull_keys=pull)
