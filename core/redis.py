"""The one door to Redis: a client for one server, or for a Redis Cluster.

``connection()`` answers the client every module uses. With ``REDIS_CLUSTER``
off it is django-redis's pooled client for ``CACHES["default"]`` (one server at
``REDIS_URL``); with it on, a ``redis.cluster.RedisCluster`` that starts from
the node ``REDIS_URL`` names, discovers the others, and follows the topology by
itself (a ``MOVED`` reply or a dead node makes it reload the slot map).

What differs on a cluster, and the helpers that hide it:

- a command or script may name several keys only if they share a hash slot
  (``{tag}``): ``slot_groups`` cuts a list of keys into such groups, and
  ``Script`` runs a script once per group, one pipelined round trip per node;
- ``MGET`` of keys in many slots: ``mget`` (``mget_nonatomic`` on a cluster:
  one ``MGET`` per slot, pipelined per node);
- a non-transactional pipeline works (its commands are sent to each node they
  belong to, every node written before any is read), ``MULTI`` across slots
  does not: no module uses a transaction;
- several modules' reads for one request go in one round trip with ``RoundTrip``
  (a pipeline: on a cluster, one batch per node, sent side by side);
- ``SCAN`` and ``INFO`` concern one node: ``scan_iter`` and ``used_memory`` ask
  every master, ``scan_slots`` the masters of some slots;
- a failover moves slots to a replica that may lack the last writes its master
  acknowledged (replication is asynchronous): ``slot_masters`` is the slot map as
  the cluster has it now, and ``slots_moved`` the slots whose master changed
  between two such maps (``timelines.services.failover_repair``).

Every node connection of the cluster client is a ``core.breaker.BreakerConnection``:
a breaker per node, as ``BreakerRedis`` gives the one server.
"""
import functools
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

from django.conf import settings
from redis.cluster import RedisCluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    MovedError,
    NoScriptError,
    RedisError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .breaker import BreakerConnection

_clusters: dict[tuple, RedisCluster] = {}
T = TypeVar("T")

# Redis cannot answer now, and may soon: no connection, a timeout, or a cluster that is
# failing over (the cluster is down, a master is down, try again, a slot has no master
# yet, slots that moved until the client's retries ran out). Every caller that degrades
# (reads from PostgreSQL, a 503 with Retry-After) catches these, and the breakers count
# them; any other Redis error is a bug and goes on to a 500. (``MasterDownError`` is a
# ``ClusterDownError``.)
UNREACHABLE: tuple[type[Exception], ...] = (
    RedisConnectionError, RedisTimeoutError, ClusterDownError, ClusterError, TryAgainError, SlotNotCoveredError,
    MovedError, AskError,
)
# Any failure of a Redis call: every RedisError, and the cluster client's that are not one
# (a slot without a master), for callers that carry on without Redis whatever went wrong.
FAILURES: tuple[type[Exception], ...] = (RedisError, *UNREACHABLE)


def is_cluster() -> bool:
    return bool(getattr(settings, "REDIS_CLUSTER", False))


def connection():
    """The Redis client: ``redis.Redis`` (django-redis's pool) or ``RedisCluster``."""
    if not is_cluster():
        from django_redis import get_redis_connection

        return get_redis_connection("default")
    options = settings.REDIS_CLUSTER_OPTIONS
    key = (settings.REDIS_URL, tuple(sorted(options.items())))
    client = _clusters.get(key)
    if client is None:
        client = _clusters[key] = RedisCluster.from_url(
            settings.REDIS_URL, connection_class=BreakerConnection, **options)
    return client


def _encode(key) -> bytes:
    return key if isinstance(key, bytes) else str(key).encode()


def slot_groups(keys: Iterable) -> list[list]:
    """``keys`` cut into groups that each lie in one hash slot (all of them, one server), in first-seen order."""
    keys = list(keys)
    if not is_cluster():
        return [keys] if keys else []
    groups: dict[int, list] = defaultdict(list)
    for key in keys:
        groups[key_slot(_encode(key))].append(key)
    return list(groups.values())


@functools.cache
def _slot_tags() -> tuple[str, ...]:
    tags: list[str | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
    left, n = REDIS_CLUSTER_HASH_SLOTS, 0
    while left:
        slot = key_slot(str(n).encode())
        if tags[slot] is None:
            tags[slot], left = str(n), left - 1
        n += 1
    return tuple(str(tag) for tag in tags)


def slot_tag(key) -> str:
    """A hash tag of the slot ``key`` lies in, the same for every key of that slot (the
    smallest decimal number hashed there): a key named ``...{tag}`` is one per slot."""
    return _slot_tags()[key_slot(_encode(key))]


def mget(keys: list) -> list:
    """Values of ``keys`` in order (None where absent): one round trip per server."""
    if not keys:
        return []
    client = connection()
    if is_cluster():
        return client.mget_nonatomic(keys)
    return client.mget(keys)


def scan_iter(match: str, count: int = 1000) -> Iterator[bytes]:
    """Every key matching ``match``, on every master."""
    client = connection()
    if is_cluster():
        for node in client.get_primaries():
            yield from client.get_redis_connection(node).scan_iter(match=match, count=count)
    else:
        yield from client.scan_iter(match=match, count=count)


def scan_slots(match: str, slots: set[int], count: int = 1000) -> Iterator[bytes]:
    """Every key matching ``match`` that lies in one of ``slots``, on the masters serving them
    (the slot map read afresh first: this follows a topology change)."""
    client = connection()
    client.nodes_manager.initialize()
    nodes = {client.nodes_manager.get_node_from_slot(slot).name for slot in slots}
    for name in sorted(nodes):
        for key in client.get_redis_connection(client.get_node(node_name=name)).scan_iter(match=match, count=count):
            if key_slot(key) in slots:
                yield key


# The slot map: ``(first slot, last slot, master node id)`` for each range served.
SlotMap = list[tuple[int, int, str]]


def slot_masters() -> SlotMap:
    """The cluster's slot ranges and the node id of each one's master, as the first master
    that answers sees them now (``CLUSTER SHARDS``)."""
    client = connection()
    failure: Exception = ClusterDownError("no master answered CLUSTER SHARDS")
    for node in client.get_primaries():
        try:
            shards = client.get_redis_connection(node).execute_command("CLUSTER", "SHARDS")
        except FAILURES as error:
            failure = error
            continue
        return _slot_map(shards)
    raise failure


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _slot_map(shards) -> SlotMap:
    ranges = []
    for shard in shards:
        shard = {_text(k): v for k, v in shard.items()}
        nodes = [{_text(k): v for k, v in node.items()} for node in shard["nodes"]]
        # A shard may still list its failed master beside the replica promoted in its place: the
        # live one serves. A master that failed and is not replaced (yet) still counts as the
        # slots' master, so one that comes back without a failover has changed nothing.
        masters = sorted((_text(node.get("health", "")) == "failed", _text(node["id"])) for node in nodes
                         if _text(node["role"]) == "master")
        if not masters:
            continue
        bounds = [int(b) for b in shard["slots"]]
        ranges += [(bounds[i], bounds[i + 1], masters[0][1]) for i in range(0, len(bounds), 2)]
    return sorted(ranges)


def slots_moved(before: SlotMap, now: SlotMap) -> set[int]:
    """The slots whose master in ``now`` is not their master in ``before`` (a failover,
    or a slot migrated), among the slots ``now`` serves."""
    owner: list[str | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
    for first, last, node_id in before:
        owner[first : last + 1] = [node_id] * (last - first + 1)
    return {slot for first, last, node_id in now for slot in range(first, last + 1) if owner[slot] != node_id}


def delete(keys: list) -> int:
    """Delete ``keys`` (on a cluster, one ``DEL`` per slot)."""
    if not keys:
        return 0
    return connection().delete(*keys)


def used_memory() -> int:
    """The bytes the servers holding the data use (``used_memory``, summed over masters)."""
    client = connection()
    if is_cluster():
        infos = client.info("memory", target_nodes=RedisCluster.PRIMARIES)
        return sum(int(info["used_memory"]) for info in infos.values())
    return int(client.info("memory")["used_memory"])


class Reply(Generic[T]):
    """What one caller of a ``RoundTrip`` gets back: ``value``, once the trip is ``made``
    (what the caller's ``parse`` made of its replies)."""

    made = False
    value: T | None = None


class RoundTrip:
    """The reads of several modules sent to Redis together: one pipelined round trip.

    Each caller ``add``s a function queueing its commands on the pipeline and one
    parsing their replies (a command's error comes as its exception); ``execute``
    sends them all and fills every ``Reply``. A connection error or timeout raises
    from ``execute``, and then no ``Reply`` holds a value: callers go their own way.
    """

    def __init__(self, client=None):
        self.pipe = (client or connection()).pipeline(transaction=False)
        self._parts: list[tuple[int, Callable[[list], Any], Reply[Any]]] = []

    def add(self, queue: Callable[[Any], None], parse: Callable[[list], T]) -> Reply[T]:
        before = len(self.pipe)
        queue(self.pipe)
        reply: Reply[T] = Reply()
        self._parts.append((len(self.pipe) - before, parse, reply))
        return reply

    def add_whole(self, queue: Callable[[Any], None], parse: Callable[[list], T]) -> Reply[T | None]:
        """``add``, where a command that failed makes the reply's value None (the caller reads again itself)."""
        return self.add(queue, lambda replies: None if any(isinstance(r, Exception) for r in replies)
                        else parse(replies))

    def execute(self) -> None:
        replies = self.pipe.execute(raise_on_error=False)
        at = 0
        for count, parse, reply in self._parts:
            reply.value, reply.made = parse(replies[at : at + count]), True
            at += count


class Script:
    """A Lua script called by its SHA1, loaded again when a server does not know it
    (a restarted node, a replica promoted by a failover)."""

    def __init__(self, source: str):
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, *, keys: list, args: list, client=None):
        """One call; on a cluster every key must share a slot."""
        client = client or connection()
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)

    def queue(self, pipe, *, keys: list, args: list) -> None:
        """Queue one call on a pipeline (every key in one slot); its reply is a
        ``NoScriptError`` if the server does not know the script yet: call it then."""
        # On a cluster the node is named, as redis-py would otherwise ask a server for the
        # keys of every EVALSHA (COMMAND GETKEYS: a round trip each); a MOVED reply still
        # sends the call on to the right node.
        target = {"target_nodes": pipe.get_node_from_key(keys[0])} if is_cluster() else {}
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args, **target)

    def per_slot(self, *, keys: list, args: list, client=None, chunk: int | None = None) -> list:
        """Call the script once per slot group of ``keys``, each with the same ``args``;
        the results in group order (``slot_groups(keys)``'s). ``chunk`` caps the keys
        of one call (a long group is cut), so no single call holds the server for long.

        One call is sent as it is; several go in one pipelined round trip (on a
        cluster, one per node, all nodes written before any is read), and calls that
        met a server not knowing the script are sent again once it is loaded."""
        groups = slot_groups(keys)
        if chunk:
            groups = [group[i : i + chunk] for group in groups for i in range(0, len(group), chunk)]
        client = client or connection()
        if len(groups) <= 1:
            return [self(keys=group, args=args, client=client) for group in groups]
        return self.many([(group, args) for group in groups], client=client)

    def many(self, calls: list[tuple[list, list]], *, client=None) -> list:
        """Several calls, ``(keys, args)`` each (each call's keys in one slot), in one
        pipelined round trip (on a cluster, one per node, all nodes written before any is
        read); calls that met a server not knowing the script are sent again once it is
        loaded. The results in order; a call's error is raised."""
        client = client or connection()
        results: list = [None] * len(calls)
        pending = list(range(len(calls)))
        for attempt in range(2):
            pipe = client.pipeline(transaction=False)
            for i in pending:
                keys, args = calls[i]
                self.queue(pipe, keys=keys, args=args)
            for i, result in zip(pending, pipe.execute(raise_on_error=False), strict=True):
                results[i] = result
            pending = [i for i in pending if isinstance(results[i], NoScriptError)]
            if not pending or attempt:
                break
            client.script_load(self.source)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results
