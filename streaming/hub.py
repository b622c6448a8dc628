"""One stream process's switchboard: a few Redis connections in, thousands of streams out.

A ``Hub`` listens to every pub/sub channel (``events``) on one connection (one
per master on a Redis Cluster) and keeps, for the users with an open stream,
whom each follows (read from PostgreSQL when their first stream opens, then
kept up to date by the ``follow`` messages) and the reverse: for each author,
which of those users follow them. A ``tweet`` message goes to the streams of
its author's followers in the message's id range, and the author's own: the
same people whose timelines the fan-out wrote, whether their timelines are
cached or not, so what a stream shows is what the timeline shows. The tweet is
read once (``readers.render``, in the thread pool) for all of them.

Order: messages are handled in the order they arrive (one author's in the order
they were published, ``events``); who receives an event is decided when its
message arrives, and events go out in that order too (a render that finishes
early waits for the ones before it). A retried fan-out's message is dropped
(the hub remembers the last ``SEEN`` deliveries), so each stream gets a tweet
once.

A slow client never holds anyone up: each ``Stream`` has a bounded buffer
(``STREAM_BUFFER_EVENTS``), and one that overflows is closed. If the pub/sub
connection breaks, every stream is closed (its client reconnects, and a
``/v1`` client resumes where it was) and new ones are refused until the hub
listens again. A stream whose credential no longer holds is closed: at once for
the users an ``account`` message names (a suspension, ended sessions, a revoked
token), and otherwise by a sweep every ``STREAM_RECHECK_SECONDS`` (``_recheck``).
"""
from __future__ import annotations

import asyncio
import bisect
import collections
import logging
import time
from array import array
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.connection import parse_url
from redis.backoff import NoBackoff
from redis.retry import Retry

from core import redis as core_redis

from . import events, readers
from .metrics import STREAM_EVENTS, STREAM_OPEN, STREAMS_CLOSED

logger = logging.getLogger(__name__)
_UPDATES, _DELETES = STREAM_EVENTS.labels(event="update"), STREAM_EVENTS.labels(event="delete")

SEEN = 20_000  # deliveries remembered, to drop a retried fan-out's second message
THREADS = 4  # the pool's threads: PostgreSQL and Redis work off the event loop
HEARTBEAT_TICK = 1.0  # seconds between two rounds of heartbeats (each beats a share of the streams)
RECHECK_SLICE = 1000  # credentials checked against the caches per period, in turn


class Event:
    """What one stream is sent: ``update`` (with the tweet as rendered), ``delete``, or an
    ``error`` frame. One object for all its recipients, which also keeps the frames built
    from it (``frame``), so each shape is built once, not once per stream."""

    __slots__ = ("kind", "tweet_id", "rendered", "frames")

    def __init__(self, kind: str, tweet_id: int, rendered: readers.Rendered | None = None):
        self.kind, self.tweet_id, self.rendered = kind, tweet_id, rendered
        self.frames: dict[tuple, Any] | None = None

    def frame(self, key: tuple, make: Callable[[], Any]) -> Any:
        """The frame ``key`` names, built by ``make`` the first time it is asked for."""
        if self.frames is None:
            self.frames = {}
        built = self.frames.get(key)
        if built is None:
            built = self.frames[key] = make()
        return built


class Stream:
    """One open stream: its owner, its buffer of events, and why it closed (if it did)."""

    limit = 256  # events waiting at most (STREAM_BUFFER_EVENTS, set by the Hub: read once, not per event)

    __slots__ = ("credential", "mastodon", "base", "buffer", "wake", "closed", "beat", "last_id", "on", "task",
                 "sending", "websocket")

    def __init__(self, credential: readers.Credential, *, mastodon: bool, base: str, websocket: bool = False):
        self.credential = credential
        self.websocket = websocket  # pinged by the server, not sent heartbeats
        self.mastodon = mastodon
        self.base = base
        self.buffer: collections.deque[Event] = collections.deque()
        self.wake = asyncio.Event()
        self.closed: str | None = None
        self.beat = False
        self.last_id = 0  # the newest tweet id sent (a /v1 stream's Last-Event-ID)
        self.on = True  # a WebSocket unsubscribed from "user" keeps its socket but hears nothing
        self.task: asyncio.Task | None = asyncio.current_task()  # the connection's, which writes to the client
        self.sending = False  # the task is in a write the client has not taken yet

    @property
    def user_id(self) -> int:
        return self.credential.user_id

    def put(self, event: Event, *, unsubscribed_too: bool = False) -> None:
        """Queue ``event`` for the client (an answer to the client's own message is queued even
        while it has unsubscribed: ``unsubscribed_too``)."""
        if self.closed or not (self.on or unsubscribed_too):
            return
        if len(self.buffer) >= self.limit:
            self.close("slow")
            return
        self.buffer.append(event)
        self.wake.set()

    def close(self, reason: str) -> None:
        """Close the stream: its task finishes the response, or, stuck writing to a client
        that does not read, is cancelled (the connection is dropped)."""
        if self.closed is None:
            self.closed = reason
            self.buffer.clear()
            self.wake.set()
            if self.sending and reason != "client" and self.task is not None:
                self.task.cancel()


class Hub:
    def __init__(self) -> None:
        Stream.limit = settings.STREAM_BUFFER_EVENTS
        self.pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="stream")
        self.streams: dict[int, set[Stream]] = {}
        # Whom each connected user follows: a sorted array of ids (8 bytes an edge, no int objects).
        self.followees: dict[int, array[int]] = {}
        self.audience: dict[int, set[int]] = collections.defaultdict(set)
        self.loading: dict[int, list[tuple[int, bool]]] = {}
        self.loaded: dict[int, asyncio.Future] = {}
        self.seen: collections.OrderedDict[tuple, None] = collections.OrderedDict()
        self.outbox: asyncio.Queue[tuple[str, int, list[Stream], asyncio.Future | None]] = asyncio.Queue()
        self.listening = asyncio.Event()
        self.recheck_now = asyncio.Event()
        self.recheck_users: set[int] = set()  # named by account messages: checked at once
        self.tasks: list[asyncio.Task] = []
        self.stopping = False
        self.delivering = False  # an event taken from the outbox is being handed out

    # --- Running -------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for job in (self._listen, self._deliver, self._recheck, self._heartbeat):
            self.tasks.append(loop.create_task(job(), name=f"hub{job.__name__}"))

    async def stop(self) -> None:
        self.stopping = True
        for stream in list(self.all_streams()):
            stream.close("shutdown")
        for task in self.tasks:
            task.cancel()
        # Bounded: a cancellation that lands inside redis-py's connect can be swallowed there;
        # the listener then sees ``stopping`` within a second of its next read.
        await asyncio.wait(self.tasks, timeout=3)
        self.pool.shutdown(wait=False, cancel_futures=True)

    def run(self, function: Callable, *args) -> asyncio.Future:
        """``function(*args)`` in the thread pool."""
        return asyncio.get_running_loop().run_in_executor(self.pool, function, *args)

    def all_streams(self):
        for streams in self.streams.values():
            yield from streams

    def count(self) -> int:
        return sum(len(streams) for streams in self.streams.values())

    # --- Streams opening and closing ---------------------------------------------------

    async def join(self, stream: Stream) -> None:
        """Register ``stream``: from now on it hears its owner's events (once their
        graph is read: this returns then)."""
        user_id = stream.user_id
        streams = self.streams.setdefault(user_id, set())
        streams.add(stream)
        STREAM_OPEN.inc()
        if user_id in self.followees:
            return
        pending = self.loaded.get(user_id)
        if pending is None:
            pending = self.loaded[user_id] = asyncio.get_running_loop().create_future()
            self.loading[user_id] = []
            try:
                followees = await self.run(readers.followees, user_id)
            except Exception as error:  # noqa: BLE001 - PostgreSQL out: this stream cannot start
                self.loading.pop(user_id, None)
                self.loaded.pop(user_id, None)
                pending.set_exception(error)
                pending.exception()  # retrieved: other waiters re-raise it themselves
                self.leave(stream)
                raise
            for followee, followed in self.loading.pop(user_id):
                (followees.add if followed else followees.discard)(followee)
            self.loaded.pop(user_id, None)
            if user_id in self.streams:  # its streams may all have gone meanwhile
                self.followees[user_id] = array("q", sorted(followees))
                for followee in followees:
                    self.audience[followee].add(user_id)
            pending.set_result(None)
        else:
            await asyncio.shield(pending)

    def leave(self, stream: Stream) -> None:
        user_id = stream.user_id
        streams = self.streams.get(user_id)
        if streams is None or stream not in streams:
            return
        streams.discard(stream)
        STREAM_OPEN.dec()
        STREAMS_CLOSED.labels(reason=stream.closed or "client").inc()
        if streams:
            return
        del self.streams[user_id]
        for followee in self.followees.pop(user_id, ()):
            readers_of = self.audience.get(followee)
            if readers_of is not None:
                readers_of.discard(user_id)
                if not readers_of:
                    del self.audience[followee]

    # --- Messages in -------------------------------------------------------------------

    async def _listen(self) -> None:
        pause = 0.1
        while not self.stopping:
            try:
                await _listen_all(events.channels(), self._on_raw, self.listening, lambda: not self.stopping)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis went away: close the streams, listen again
                was_listening = self.listening.is_set()
                self.listening.clear()
                if was_listening:
                    pause = 0.1
                    logger.warning("lost the stream channels: closing %d streams (clients reconnect)",
                                   self.count(), exc_info=True)
                    for stream in list(self.all_streams()):
                        stream.close("redis")
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)

    def _on_raw(self, raw: bytes) -> None:
        parsed = events.parse(raw)
        if parsed is not None:
            self.on_message(parsed)

    def on_message(self, message: list) -> None:
        """Handle one message, now: who hears it is decided here, in arrival order."""
        kind = message[0]
        if kind == events.TWEET:
            _, tweet_id, author_id, lo, hi = message
            key = (tweet_id, lo, hi)  # a batch, as recorded: a retried or restarted one comes back the same
            if key in self.seen:
                return
            self.seen[key] = None
            if len(self.seen) > SEEN:
                self.seen.popitem(last=False)
            recipients = self._recipients(author_id, lo=lo, hi=hi)
            if recipients:
                bases = frozenset(s.base for s in recipients if s.mastodon)
                self.outbox.put_nowait(("update", tweet_id, recipients, self.run(readers.render, tweet_id, bases)))
        elif kind == events.DELETE:
            _, tweet_id, author_id = message
            recipients = self._recipients(author_id, lo=0, hi=None)
            if recipients:
                self.outbox.put_nowait(("delete", tweet_id, recipients, None))
        elif kind == events.FOLLOW:
            _, follower_id, followee_id, followed = message
            if follower_id in self.loading:
                self.loading[follower_id].append((followee_id, followed))
            followees = self.followees.get(follower_id)
            if followees is not None:
                at = bisect.bisect_left(followees, followee_id)
                present = at < len(followees) and followees[at] == followee_id
                if followed:
                    if not present:
                        followees.insert(at, followee_id)
                    self.audience[followee_id].add(follower_id)
                else:
                    if present:
                        del followees[at]
                    readers_of = self.audience.get(followee_id)
                    if readers_of is not None:
                        readers_of.discard(follower_id)
                        if not readers_of:
                            del self.audience[followee_id]
        elif kind == events.ACCOUNT:
            if message[1] in self.streams:
                self.recheck_users.add(message[1])
                self.recheck_now.set()

    def _recipients(self, author_id: int, *, lo: int, hi: int | None) -> list[Stream]:
        users = [u for u in self.audience.get(author_id, ()) if lo < u and (hi is None or u <= hi)]
        if lo == 0 and author_id in self.streams:
            users.append(author_id)
        return [stream for u in users for stream in self.streams.get(u, ())]

    # --- Events out ----------------------------------------------------------------------

    async def _deliver(self) -> None:
        while True:
            self.delivering = False
            kind, tweet_id, recipients, rendering = await self.outbox.get()
            self.delivering = True
            if rendering is None:
                event = Event(kind, tweet_id)
            else:
                try:
                    rendered = await rendering
                except Exception:  # noqa: BLE001 - PostgreSQL and Redis both out: the event is lost, the timeline is not
                    logger.warning("could not read tweet %s for the streams", tweet_id, exc_info=True)
                    continue
                if rendered is None:
                    continue  # deleted meanwhile, or its author suspended
                event = Event(kind, tweet_id, rendered)
            for stream in recipients:
                stream.put(event)
            (_UPDATES if kind == "update" else _DELETES).inc(len(recipients))
            # Let the streams write before the next event: a burst of finished renders must not
            # fill a reading client's buffer faster than it is ever given the chance to empty it.
            await asyncio.sleep(0)

    async def _heartbeat(self) -> None:
        """Beat every SSE stream once per ``STREAM_HEARTBEAT_SECONDS``, spread over the period
        (a share of the streams each ``HEARTBEAT_TICK``), never all in one burst: ten thousand
        writes at once would hold up the events behind them. A WebSocket is pinged by uvicorn."""
        ticks = max(int(settings.STREAM_HEARTBEAT_SECONDS / HEARTBEAT_TICK), 1)
        turn = 0
        while True:
            await asyncio.sleep(settings.STREAM_HEARTBEAT_SECONDS / ticks)
            streams = [stream for stream in self.all_streams() if not stream.websocket]
            share = -(-len(streams) // ticks)  # rounded up: every stream within the period
            if turn >= len(streams):
                turn = 0
            for stream in streams[turn:turn + share]:
                stream.beat = True
                stream.wake.set()
            turn += share

    async def _recheck(self) -> None:
        """Check the open streams' credentials again. Every ``STREAM_RECHECK_SECONDS``: each
        JWT's expiry (no I/O), the streams of users an ``account`` message named (also at
        once, when one arrives: a suspension, a revoked token, sessions ended), and the next
        ``RECHECK_SLICE`` streams in turn against the author and token caches, so a change no
        message announced is caught within a sweep and no sweep holds the process up."""
        turn = 0
        while True:
            try:
                await asyncio.wait_for(self.recheck_now.wait(), settings.STREAM_RECHECK_SECONDS)
            except TimeoutError:
                pass
            self.recheck_now.clear()
            named, self.recheck_users = self.recheck_users, set()
            streams = list(self.all_streams())
            now = time.time()
            for stream in streams:
                if stream.credential.kind == readers.JWT and stream.credential.claims.get("exp", 0) <= now:
                    stream.close("revoked")
            if turn >= len(streams):
                turn = 0
            chosen = {s.credential for s in streams[turn:turn + RECHECK_SLICE]}
            turn += RECHECK_SLICE
            chosen |= {s.credential for user_id in named for s in self.streams.get(user_id, ())}
            if not chosen:
                continue
            try:
                gone = await self.run(readers.revoked, list(chosen))
            except Exception:  # noqa: BLE001 - nothing to check against: keep the streams, try again
                logger.warning("could not check the open streams' tokens", exc_info=True)
                self.recheck_users |= named
                continue
            for stream in streams:
                if stream.credential in gone:
                    stream.close("revoked")


class ChannelsLost(Exception):
    """A node ended our subscription (its slot moved, say): events may have been missed."""


async def _listen_all(channels: list[str], handle: Callable[[bytes], None], listening: asyncio.Event,
                      running: Callable[[], bool]) -> None:
    """Subscribe to ``channels`` and hand each message's data to ``handle``, until a
    connection breaks (raised). One plain pub/sub connection per node that holds some of
    the channels: on one server, one; on a Redis Cluster, one per master (their slots'
    owners, read from the cluster when this starts), each read by a task of its own
    (redis-py's cluster pub/sub reader can leave a node's messages unread in a burst).
    No retries inside redis-py: a broken connection must reach the hub, which closes the
    streams (their clients missed events, and resume) and subscribes again. Returns once
    ``running()`` says to stop."""
    by_node: dict[tuple[str, int], list[str]] = collections.defaultdict(list)
    if core_redis.is_cluster():
        cluster = AsyncRedisCluster.from_url(settings.REDIS_URL)
        try:
            await cluster.initialize()
            for channel in channels:
                node = cluster.get_node_from_key(channel)
                if node is None:
                    raise ChannelsLost(f"no master holds {channel}")
                by_node[(str(node.host), int(node.port))].append(channel)
        finally:
            await _quietly(cluster.aclose())
    else:
        by_node[("", 0)] = channels
    pubsubs = []
    try:
        for (host, port), mine in by_node.items():
            options: dict[str, Any] = {"retry": Retry(NoBackoff(), 0), "health_check_interval": 5,
                                       "socket_connect_timeout": 2, "socket_keepalive": True}
            address = parse_url(settings.REDIS_URL) | ({"host": host, "port": port} if host else {})
            client = aioredis.Redis(connection_pool=aioredis.ConnectionPool(**address, **options))
            pubsub = client.pubsub()
            pubsubs.append((client, pubsub))
            for channel in mine:  # one SSUBSCRIBE each: several must share a slot
                await pubsub.ssubscribe(channel)
        listening.set()
        logger.info("listening to %d stream channels on %d connection(s)", len(channels), len(pubsubs))
        await asyncio.gather(*(_read(pubsub, handle, running) for _, pubsub in pubsubs))
    finally:
        for client, pubsub in pubsubs:
            await _quietly(pubsub.aclose())
            await _quietly(client.aclose())


async def _read(pubsub, handle: Callable[[bytes], None], running: Callable[[], bool]) -> None:
    while running():
        message = await pubsub.get_message(timeout=1.0)
        if message is None:
            continue
        kind = message.get("type")
        if kind in ("smessage", "message"):
            handle(message["data"])
        elif kind in ("sunsubscribe", "unsubscribe"):
            raise ChannelsLost(message.get("channel"))


async def _quietly(awaitable) -> None:
    try:
        await awaitable
    except Exception:  # noqa: BLE001 - closing what already broke
        pass


