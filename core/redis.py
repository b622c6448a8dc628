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
  a script made ``cross_slot`` runs instead once per node (and chunk) with
  the keys of many slots, sent to each node directly (``Script.per_node``),
  falling back per slot where a node no longer holds a key;
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
import contextlib
import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

from django.conf import settings
from redis.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    ClusterError,
    MovedError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    ResponseError,
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


def slot_groups(keys: Iterable, *, cluster: bool | None = None) -> list[list]:
    """``keys`` cut into groups that each lie in one hash slot (all of them, one server), in first-seen order.
    ``cluster``: whether they go to a cluster (default: the product's setting)."""
    keys = list(keys)
    if not (is_cluster() if cluster is None else cluster):
        return [keys] if keys else []
    groups: dict[int, list] = defaultdict(list)
    for key in keys:
        groups[key_slot(_encode(key))].append(key)
    return list(groups.values())


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


# The first lines of a script's cross-slot form (``Script(..., cross_slot=True)``). The flag lets one
# call touch keys of several hash slots, as long as the node running it serves them all; the keys
# travel in ARGV (declared KEYS must still share a slot: the node refuses a call whose KEYS do not,
# CROSSSLOT, before looking at the flag), as the count of keys, the keys, then the script's own
# arguments, and the prologue hands the script its usual KEYS and ARGV. A key the node does not
# serve (a slot moved, a stale slot map) stops the call with an error, after it wrote the keys before
# it unless the script reads every key before it writes any: ``Script.per_node`` then sends that
# call's keys again per slot, which only an idempotent script may take.
CROSS_SLOT_PROLOGUE = """#!lua flags=allow-cross-slot-keys
local KEYS, ARGV = (function(argv)
  local n, keys, args = tonumber(argv[1]), {}, {}
  for i = 2, n + 1 do keys[#keys + 1] = argv[i] end
  for i = n + 2, #argv do args[#args + 1] = argv[i] end
  return keys, args
end)(ARGV)
"""


def on_cluster(client) -> bool:
    """Whether ``client`` speaks to a Redis Cluster (a ``RedisCluster`` or its pipeline)."""
    return isinstance(client, RedisCluster | ClusterPipeline)


class Script:
    """A Lua script called by its SHA1, loaded again when a server does not know it
    (a restarted node, a replica promoted by a failover).

    ``cross_slot``: the script is idempotent (a call sent twice changes nothing more) and
    treats each key alone, so on a cluster ``per_node`` may run it over the keys of many
    slots at once (its cross-slot form, ``CROSS_SLOT_PROLOGUE``)."""

    def __init__(self, source: str, *, cross_slot: bool = False):
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()
        self.cross_slot = Script(CROSS_SLOT_PROLOGUE + source) if cross_slot else None

    def __call__(self, *, keys: list, args: list, client=None):
        """One call; on a cluster every key must share a slot."""
        client = client or connection()
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self.source)
            return client.evalsha(self.sha, len(keys), *keys, *args)

    def load(self, client=None) -> None:
        """Load the script on the server (after a queued call's ``NoScriptError``)."""
        (client or connection()).script_load(self.source)

    def queue(self, pipe, *, keys: list, args: list) -> None:
        """Queue one call on a pipeline (every key in one slot); its reply is a
        ``NoScriptError`` if the server does not know the script yet: call it then."""
        # On a cluster the node is named, as redis-py would otherwise ask a server for the
        # keys of every EVALSHA (COMMAND GETKEYS: a round trip each); a MOVED reply still
        # sends the call on to the right node.
        target = {"target_nodes": pipe.get_node_from_key(keys[0])} if on_cluster(pipe) else {}
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args, **target)

    def per_slot(self, *, keys: list, args: list, client=None, chunk: int | None = None) -> list:
        """Call the script once per slot group of ``keys``, each with the same ``args``;
        the results in group order (``slot_groups(keys)``'s). ``chunk`` caps the keys
        of one call (a long group is cut), so no single call holds the server for long.

        One call is sent as it is; several go in one pipelined round trip (on a
        cluster, one per node, all nodes written before any is read), and calls that
        met a server not knowing the script are sent again once it is loaded."""
        client = client or connection()
        groups = slot_groups(keys, cluster=on_cluster(client))
        if chunk:
            groups = [group[i : i + chunk] for group in groups for i in range(0, len(group), chunk)]
        if len(groups) <= 1:
            return [self(keys=group, args=args, client=client) for group in groups]
        return self.many([(group, args) for group in groups], client=client)

    def per_node(self, *, keys: list, args: list, client=None, chunk: int | None = None) -> list:
        """Call the script over ``keys``, each call with the same ``args``, as few calls as the
        servers allow: one per ``chunk`` keys on one server (``per_slot``), and on a cluster,
        for a ``cross_slot`` script, one per node and ``chunk`` with the keys of many slots.
        The results, one per call (in no promised order: their sum is what callers read).

        On a cluster the keys are grouped by the client's slot map, each node's calls go to it
        directly in one pipelined write, every node written before any is read, and calls
        that met a node not knowing the script are sent again once it is loaded. A call a
        node answered otherwise (a key it does not serve: a slot migrated or failed over since
        the map was read; the node unreachable) has its keys sent again per slot, as
        ``per_slot`` sends them (it follows ``MOVED`` and ``ASK`` and raises what still fails),
        and the slot map is read again for the next calls. Such a call may have written some of
        its keys before it stopped: the script is idempotent, so nothing is written twice, and
        one that reads every key before it writes any (the insert) stopped before writing."""
        client = client or connection()
        if self.cross_slot is None or not isinstance(client, RedisCluster):
            return self.per_slot(keys=keys, args=args, client=client, chunk=chunk)
        calls = node_groups(client, keys, chunk=chunk)
        results, failed = self.cross_slot._on_nodes(client, [(node, group, args) for node, group in calls])
        if failed:
            with contextlib.suppress(*FAILURES, RedisClusterException):  # per_slot raises what still fails
                client.nodes_manager.initialize()  # the map that sent those keys astray is out of date
            results += self.per_slot(keys=[key for i in failed for key in calls[i][1]], args=args, client=client,
                                     chunk=chunk)
        return results

    def _on_nodes(self, client: RedisCluster, calls: list[tuple[ClusterNode, list, list]]) -> tuple[list, list[int]]:
        """Send ``calls`` (node, keys, args), keys in ARGV (the cross-slot form), each node's in one
        pipelined write, all nodes written before any is read; load the script where a node does
        not know it and send those calls again. The results of the calls that succeeded, and the
        indexes of those that failed otherwise."""
        results: dict[int, Any] = {}
        pending = list(range(len(calls)))
        for attempt in range(2):
            replies = _pipelined_per_node(client, [
                (calls[i][0], ("EVALSHA", self.sha, 0, len(calls[i][1]), *calls[i][1], *calls[i][2]))
                for i in pending])
            missing = {calls[i][0].name: calls[i][0] for i, reply in zip(pending, replies, strict=True)
                       if isinstance(reply, NoScriptError)}
            results.update((i, reply) for i, reply in zip(pending, replies, strict=True))
            pending = [i for i in pending if isinstance(results[i], NoScriptError)]
            if not pending or attempt:
                break
            for node in missing.values():
                with contextlib.suppress(*FAILURES):  # a node that does not take it fails its calls again
                    client.get_redis_connection(node).script_load(self.source)
        failed = [i for i, result in sorted(results.items()) if isinstance(result, Exception)]
        return [result for _, result in sorted(results.items()) if not isinstance(result, Exception)], failed

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


def node_groups(client: RedisCluster, keys: Iterable, *, chunk: int | None = None) -> list[tuple[ClusterNode, list]]:
    """``keys`` grouped by the master that serves each one's slot in ``client``'s slot map (in
    first-seen order), each group cut into pieces of at most ``chunk`` keys."""
    # The map read directly (each slot's nodes, its master first), once a slot: asking the nodes
    # manager for every slot of a large fan-out (its lock, its checks) cost more than the calls.
    served = client.nodes_manager.slots_cache
    by_slot: dict[int, list] = {}
    groups: dict[str, tuple[ClusterNode, list]] = {}
    for key in keys:
        slot = key_slot(_encode(key))
        group = by_slot.get(slot)
        if group is None:
            nodes = served.get(slot)
            if not nodes:
                raise SlotNotCoveredError(f"slot {slot} is not covered by the cluster")
            group = by_slot[slot] = groups.setdefault(nodes[0].name, (nodes[0], []))[1]
        group.append(key)
    return [(node, group[i : i + chunk] if chunk else group) for node, group in groups.values()
            for i in range(0, len(group), chunk or len(group) or 1)]


def _pipelined_per_node(client: RedisCluster, commands: list[tuple[ClusterNode, tuple]]) -> list:
    """Each command sent to its node: a node's commands in one write, every node written before
    any is read. The replies in order, an error reply (or the connection's failure) as its exception."""
    replies: list = [None] * len(commands)
    by_node: dict[str, list[int]] = defaultdict(list)
    for i, (node, _) in enumerate(commands):
        by_node[node.name].append(i)
    sent: list[tuple[Any, Any, list[int]]] = []  # (pool, connection, the commands written on it)
    unread = set()  # connections written and not read to the end: closed, not pooled as they are
    try:
        for indexes in by_node.values():
            pool = client.get_redis_connection(commands[indexes[0]][0]).connection_pool
            try:
                conn = pool.get_connection()
            except FAILURES as error:
                for i in indexes:
                    replies[i] = error
                continue
            unread.add(id(conn))
            try:
                conn.send_packed_command(conn.pack_commands([commands[i][1] for i in indexes]))
            except FAILURES as error:
                for i in indexes:
                    replies[i] = error
                sent.append((pool, conn, []))
                continue
            sent.append((pool, conn, indexes))
        for _, conn, indexes in sent:
            for at, i in enumerate(indexes):
                try:
                    replies[i] = conn.read_response()
                except ResponseError as error:
                    replies[i] = error
                except FAILURES as error:  # the connection is gone: the rest of its replies with it
                    for j in indexes[at:]:
                        replies[j] = error
                    break
            else:
                unread.discard(id(conn))
    finally:
        for pool, conn, _ in sent:
            if id(conn) in unread:
                conn.disconnect()
            pool.release(conn)
    return replies
