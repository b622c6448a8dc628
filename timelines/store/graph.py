"""A user's follow graph as the store caches it: packed ids, tagged with what they were read at.

A cached graph is ``generation:pull_epoch:width:count|``, then the ``count``
followees and then those of them with pulled tweets, sorted, each an unsigned
little-endian integer of ``width`` bytes (4, or 8 if an id needs it). Four bytes
an id where decimal text took about seven, read back in one C call however many
there are. A graph tagged with another generation or pull epoch reads as absent.
"""
import sys
from array import array
from dataclasses import dataclass

from core import redis as core_redis

from . import keys


@dataclass(frozen=True)
class Graph:
    """A user's accepted followees, and those of them whose tweets may be pulled."""

    followees: set[int]
    pulled: set[int]


_ID_TYPECODES = {4: "I", 8: "Q"}


def _ids_packed(ids: list[int], width: int) -> bytes:
    return _little_endian(array(_ID_TYPECODES[width], ids)).tobytes()


def _ids_unpacked(raw: bytes, width: int) -> array:
    return _little_endian(array(_ID_TYPECODES[width], raw))


def _little_endian(ids: array) -> array:
    """``ids`` between this machine's byte order and the stored one (a swap on a big-endian machine)."""
    if sys.byteorder == "big":
        ids.byteswap()
    return ids


def parsed(raw: bytes | None, generation: int, pull_epoch: int) -> Graph | None:
    """The graph a cached value holds, if it was read at ``generation`` and ``pull_epoch``."""
    if raw is None:
        return None
    head, _, body = raw.partition(b"|")
    tag, _, shape = head.rpartition(b":")  # shape: the count; tag: generation:pull_epoch:width
    if tag not in (f"{generation}:{pull_epoch}:4".encode(), f"{generation}:{pull_epoch}:8".encode()):
        return None  # another generation or epoch (or a layout this code does not write)
    width = int(tag[-1:])
    split = width * int(shape)
    return Graph(followees=set(_ids_unpacked(body[:split], width)), pulled=set(_ids_unpacked(body[split:], width)))


def graph_save(*, user_id: int, generation: int, pull_epoch: int, graph: Graph) -> None:
    """Cache the user's graph as read at ``generation`` and ``pull_epoch`` (both read *before* the query)."""
    followees, pulled = sorted(graph.followees), sorted(graph.pulled)
    width = 4 if max(followees[-1:] + pulled[-1:], default=0) < 1 << 32 else 8
    value = (f"{generation}:{pull_epoch}:{width}:{len(followees)}|".encode()
             + _ids_packed(followees, width) + _ids_packed(pulled, width))
    core_redis.connection().set(keys.graph_key(user_id), value, ex=keys.ttl_seconds())
