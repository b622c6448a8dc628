"""The read path's pieces: a reader's cached state and the pulled lists, each in a round trip it joins.

A read refreshes what it reads: every read of a timeline or pulled list resets
its idle TTL, and a timeline's read marks its owner live (``live.queue_mark``),
in the same round trip. That bookkeeping is what keeps a reader's caches alive;
nothing else here writes. ``*_prefetch`` put their commands in a
``core.redis.RoundTrip`` the caller makes; the others make a round trip of
their own.

A first page's read may also ask for the values stored under the newest ids
of the timeline merged with the pulled lists of the reader's cached graph
(``HomeState.head_values``: the tweet cache's entries, for the caller that
names their keys), read by a script beside the list in the same round trip
(``lua/head.lua``). Those keys are not the script's declared ones, which only
a single server allows: on a Redis Cluster the values are not read here, and
the caller reads them in its next round trip.
"""
import contextlib
from dataclasses import dataclass

from redis.exceptions import NoScriptError

from core import redis as core_redis

from . import graph as graphs
from . import keys, live, process_cache, scripts
from .windows import Window, read_size, window

_HEAD = scripts.load("head", uses=("older",))


@dataclass(frozen=True)
class HomeState:
    """One round trip's worth of a user's cached state."""

    window: Window | None  # None: not cached
    generation: int
    pull_epoch: int
    graph: graphs.Graph | None  # None: not cached, or cached at an older generation or pull epoch
    pull_seq: int  # the pulled lists' write sequence (``author_known``)
    head_values: dict[int, bytes | None] | None = None  # by id, the values asked for (``HeadValues``), if read


@dataclass(frozen=True)
class HeadValues:
    """The values to read beside a timeline: those under ``<key_prefix><id>`` of the newest ``count`` ids
    of the timeline and the pulled lists its reader's cached graph names."""

    key_prefix: str
    count: int


def _executed(commands):
    """Send the commands of a ``(queue, parse)`` pair in a round trip of their own; their parsed replies."""
    queue, parse = commands
    pipe = core_redis.connection().pipeline(transaction=False)
    queue(pipe)
    return parse(pipe.execute())


def read(*, user_id: int, prefix: int | None = None) -> HomeState:
    """The cached window of a timeline (refreshing its idle TTL), its generation and cached graph.

    With ``prefix``, only the newest ``prefix`` ids are read: a prefix of a
    gapless list is gapless down to its own last id, so it is a window too.
    """
    return _executed(_read_commands(user_id=user_id, prefix=prefix))


def read_prefetch(round_trip: core_redis.RoundTrip, *, user_id: int, prefix: int | None = None,
                  head_values: HeadValues | None = None) -> core_redis.Reply[HomeState | None]:
    """``read`` within a round trip the caller makes; the reply's value is the ``HomeState``
    (None if a command failed: read again). ``head_values``: read those too, on a single
    server (``HomeState.head_values``; on a cluster they are left for the caller)."""
    queue, parse = _read_commands(user_id=user_id, prefix=prefix,
                                  head_values=None if core_redis.is_cluster() else head_values)

    def parse_whole(replies: list) -> HomeState | None:
        if isinstance(replies[0], NoScriptError):  # a server that lost its scripts: load it for the next read
            with contextlib.suppress(*core_redis.FAILURES):
                _HEAD.load()
        return None if any(isinstance(r, Exception) for r in replies) else parse(replies)

    return round_trip.add(queue, parse_whole)


def _read_commands(*, user_id: int, prefix: int | None, head_values: HeadValues | None = None):
    key = keys.timeline_key(user_id)
    size = read_size(prefix)

    def queue(pipe) -> None:
        if head_values is None:
            pipe.lrange(key, 0, size)  # one entry more tells whether the sentinel closes the list
        else:
            _HEAD.queue(pipe, keys=[key], args=[size, head_values.count, head_values.key_prefix,
                                                keys.graph_key(user_id), keys.generation_key(user_id),
                                                keys.pull_epoch_key(), *keys.author_key_affixes()])
        pipe.expire(key, keys.ttl_seconds())
        pipe.get(keys.generation_key(user_id))
        pipe.get(keys.pull_epoch_key())
        pipe.get(keys.graph_key(user_id))
        pipe.get(keys.pull_seq_key())
        live.queue_mark(pipe, [user_id])  # beside the EXPIRE: the timeline lives on, so its owner is marked

    def parse(replies: list) -> HomeState:
        raw, existed, generation, pull_epoch, graph, pull_seq = replies[:6]
        values = None
        if head_values is not None:
            raw, asked, found = raw
            values = dict(zip(map(int, asked), found, strict=True))
        generation, pull_epoch = int(generation or 0), int(pull_epoch or 0)
        return HomeState(
            window=window(raw, size) if existed else None,
            generation=generation,
            pull_epoch=pull_epoch,
            graph=graphs.parsed(graph, generation, pull_epoch),
            pull_seq=int(pull_seq or 0),
            head_values=values,
        )

    return queue, parse


def author_touch(round_trip: core_redis.RoundTrip, *, author_ids: list[int]) -> None:
    """Refresh the idle TTL of pulled lists read from this process's copies, within a round trip."""
    def queue(pipe) -> None:
        for author_id in author_ids:
            pipe.expire(keys.author_key(author_id), keys.ttl_seconds())

    round_trip.add(queue, lambda replies: None)


def author_read(*, author_ids: list[int], prefix: int | None = None) -> dict[int, Window | None]:
    """The cached pulled lists of ``author_ids`` (None where absent; only the newest
    ``prefix`` ids if given), refreshing their idle TTL."""
    if not author_ids:
        return {}
    return _executed(_author_read_commands(author_ids=author_ids, prefix=prefix))


def author_read_prefetch(round_trip: core_redis.RoundTrip, *, author_ids: list[int],
                         prefix: int | None = None, seq: int | None = None) -> core_redis.Reply:
    """``author_read`` within a round trip the caller makes; the reply's value is its
    dict (None if a command failed: read again). With ``seq``, the pull sequence read
    before this trip, the lists read are kept for ``author_known``."""
    return round_trip.add_whole(*_author_read_commands(author_ids=author_ids, prefix=prefix, seq=seq))


def _author_read_commands(*, author_ids: list[int], prefix: int | None, seq: int | None = None):
    size = read_size(prefix)

    def queue(pipe) -> None:
        for author_id in author_ids:
            pipe.lrange(keys.author_key(author_id), 0, size)
            pipe.expire(keys.author_key(author_id), keys.ttl_seconds())

    def parse(replies: list) -> dict[int, Window | None]:
        read = {author_id: window(replies[2 * i], size) if replies[2 * i + 1] else None
                for i, author_id in enumerate(author_ids)}
        if seq is not None:
            process_cache.remember(windows=read, size=size, seq=seq)
        return read

    return queue, parse
