"""The stream phase's clients: thousands of live timelines (SSE and WebSocket) held open from one event loop.

The bench's ``stream`` phase (``bench/run.py``) opens a connection per user to the stream process, a quarter
Mastodon SSE (``/api/v1/streaming/user``), a quarter ``/v1`` SSE (``/v1/timeline/home/stream``) and half
Mastodon WebSocket (``/api/v1/streaming?stream=user``), holds them while it posts and loads the stack, and
matches every tweet event that arrives with the post that caused it.

The clients must not be what is measured, so they do as little as a client can while data arrives: each
connection is an ``asyncio.Protocol`` whose ``data_received`` notes the time and keeps the bytes, nothing more;
the bytes are parsed afterwards, in a sweep that runs once nothing has arrived for :data:`SWEEP_IDLE` seconds
(or at the latest :data:`SWEEP_LATEST` seconds after the oldest unparsed bytes), so a burst of thousands of
events is timestamped as it arrives, not as the parser gets to it. An event's arrival time is that of the read
that completed it. The pure pieces -- the chunked decoder, the SSE and WebSocket parsers, the tweet id of an
event and the matching of posts with arrivals -- are tested in ``tests/bench/test_streams.py``.

The protocol is only what the stream process speaks: HTTP/1.1 answers chunked or ended by the connection,
SSE lines ended by ``\\n`` (``\\r\\n`` too), unmasked server frames (text, ping, close; fragments joined),
masked client frames (a pong for each ping, as uvicorn closes a WebSocket that does not answer its pings).
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import os
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import orjson

from bench.loadgen import percentile

try:
    import uvloop
except ImportError:  # optional: the standard event loop works as well, only slower
    uvloop = None

WS = "websocket"
MASTODON_SSE = "mastodon-sse"
V1_SSE = "v1-sse"
KINDS = (WS, MASTODON_SSE, V1_SSE)
PATHS = {MASTODON_SSE: "/api/v1/streaming/user", V1_SSE: "/v1/timeline/home/stream", WS: "/api/v1/streaming"}
SWEEP_IDLE = 0.05  # parse once nothing has arrived for this long ...
SWEEP_LATEST = 2.0  # ... or this long after the oldest unparsed read at the latest
SWEEP_SLICE = 100  # connections parsed between two looks at the sockets
OPEN_TIMEOUT = 60.0  # seconds a connection may take to be answered (its user's graph read, behind the others)
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455's


def kind_of(index: int) -> str:
    """The kind of the ``index``-th connection: every other one a WebSocket, the rest the two SSE streams
    in turn, so any prefix of the connections (and of the followers among them) is mixed alike."""
    return WS if index % 2 == 0 else (MASTODON_SSE if index % 4 == 1 else V1_SSE)


# --- Parsing (pure) --------------------------------------------------------------------------------------------


class Dechunker:
    """HTTP/1.1 ``Transfer-Encoding: chunked``, decoded incrementally: :meth:`feed` returns the body bytes the
    data completes (possibly none); ``done`` once the last chunk has come."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._left = 0  # bytes of the current chunk's data still to come
        self._skip = 0  # bytes of the CRLF after a chunk's data still to skip
        self.done = False

    def feed(self, data: bytes) -> bytes:
        buffer = self._buffer
        buffer += data
        out = []
        while not self.done:
            if self._left:
                take = min(self._left, len(buffer))
                out.append(bytes(buffer[:take]))
                del buffer[:take]
                self._left -= take
                if self._left:
                    break
                self._skip = 2
            if self._skip:
                take = min(self._skip, len(buffer))
                del buffer[:take]
                self._skip -= take
                if self._skip:
                    break
            end = buffer.find(b"\r\n")
            if end < 0:
                break
            size = int(bytes(buffer[:end]).split(b";", 1)[0], 16)
            del buffer[: end + 2]
            if size == 0:
                self.done = True
            self._left = size
        return b"".join(out)


@dataclass
class SseEvent:
    event: str
    data: bytes
    id: bytes | None = None


class SseParser:
    """Server-Sent Events, parsed incrementally as ``EventSource`` does: fields up to a blank line make an
    event (``event`` defaults to ``message``; several ``data`` lines join with ``\\n``); comment lines are
    counted in ``comments``."""

    def __init__(self) -> None:
        self._partial = b""
        self._event: bytes | None = None
        self._data: list[bytes] = []
        self._id: bytes | None = None
        self.comments = 0

    def feed(self, data: bytes) -> list[SseEvent]:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        events = []
        for line in lines:
            line = line.removesuffix(b"\r")
            if not line:
                if self._data or self._event is not None:
                    name = (self._event or b"message").decode()
                    events.append(SseEvent(name, b"\n".join(self._data), self._id))
                self._event, self._data, self._id = None, [], None
            elif line.startswith(b":"):
                self.comments += 1
            else:
                name, _, value = line.partition(b":")
                value = value.removeprefix(b" ")
                if name == b"event":
                    self._event = value
                elif name == b"data":
                    self._data.append(value)
                elif name == b"id":
                    self._id = value
        return events


TEXT, CLOSE, PING, PONG, CONTINUATION = 0x1, 0x8, 0x9, 0xA, 0x0


class WsParser:
    """WebSocket frames (RFC 6455), parsed incrementally: :meth:`feed` returns the complete messages as
    ``(opcode, payload)``, a fragmented message joined under its first frame's opcode."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._fragments: list[bytes] = []
        self._opcode = 0

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        buffer = self._buffer
        buffer += data
        out = []
        while len(buffer) >= 2:
            fin, opcode = buffer[0] & 0x80, buffer[0] & 0x0F
            masked, length = buffer[1] & 0x80, buffer[1] & 0x7F
            at = 2
            if length == 126:
                if len(buffer) < 4:
                    break
                length, at = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    break
                length, at = int.from_bytes(buffer[2:10], "big"), 10
            key = b""
            if masked:
                key, at = bytes(buffer[at : at + 4]), at + 4
            if len(buffer) < at + length:
                break
            payload = bytes(buffer[at : at + length])
            del buffer[: at + length]
            if masked:
                payload = _mask(payload, key)
            if opcode >= 0x8:  # control frames are never fragmented, and may come between fragments
                out.append((opcode, payload))
                continue
            if opcode != CONTINUATION:
                self._opcode, self._fragments = opcode, []
            self._fragments.append(payload)
            if fin:
                out.append((self._opcode, b"".join(self._fragments)))
                self._fragments = []
        return out


def _mask(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return payload
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")


def ws_frame(opcode: int, payload: bytes, key: bytes | None = None) -> bytes:
    """A client's frame: final, masked with ``key`` (four random bytes unless given)."""
    key = key or os.urandom(4)
    length = len(payload)
    if length < 126:
        head = bytes([0x80 | opcode, 0x80 | length])
    elif length < 1 << 16:
        head = bytes([0x80 | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + length.to_bytes(8, "big")
    return head + key + _mask(payload, key)


def ws_accept(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` a server answers the handshake ``key`` with."""
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()  # noqa: S324 - RFC 6455's


def tweet_id_of_sse(kind: str, event: SseEvent) -> int | None:
    """The tweet a stream's SSE event brings (``update`` / ``tweet``), else None (deletes, resets)."""
    if kind == V1_SSE and event.event == "tweet":
        return int(event.id) if event.id else int(orjson.loads(event.data)["tweet_id"])
    if kind == MASTODON_SSE and event.event == "update":
        return int(orjson.loads(event.data)["id"])
    return None


def tweet_id_of_frame(payload: bytes) -> int | None:
    """The tweet a Mastodon WebSocket text frame brings (event ``update``; its payload is the Status as a JSON
    string), else None."""
    frame = orjson.loads(payload)
    if not isinstance(frame, dict) or frame.get("event") != "update":
        return None
    return int(orjson.loads(frame["payload"])["id"])


# --- Matching (pure) -------------------------------------------------------------------------------------------


@dataclass
class Delivery:
    """What the matching of posts with arrivals found."""

    latencies_ms: list[float] = field(default_factory=list)  # one per (tweet, follower) delivered, the first copy
    expected: int = 0  # (tweet, connected follower) pairs
    missing: int = 0  # pairs with no event
    duplicates: int = 0  # events beyond the first of a pair
    by_tweet: dict[int, list[float]] = field(default_factory=dict)  # the latencies again, by tweet

    @property
    def delivered(self) -> int:
        return self.expected - self.missing

    def summary(self) -> dict:
        ordered = sorted(self.latencies_ms)
        return {"pairs": self.expected, "delivered": self.delivered, "missing": self.missing,
                "duplicates": self.duplicates,
                "delivered_share": round(self.delivered / self.expected, 6) if self.expected else None,
                **{f"p{p}": _round(percentile(ordered, p)) for p in (50, 90, 99)},
                "max": _round(ordered[-1] if ordered else math.nan),
                # Where a tweet's time goes: to its first event (the post, the fan-out, the hub, one write),
                # then from its first to its last follower (the stream process writing to all of them).
                "first_ms_median": _round(_median([min(x) for x in self.by_tweet.values()])),
                "spread_ms_median": _round(_median([max(x) - min(x) for x in self.by_tweet.values()]))}


def _median(values: list[float]) -> float:
    return percentile(sorted(values), 50)


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 2)


def match(posts: dict[int, tuple[float, list[int]]], arrivals: dict[int, list[tuple[int, float]]]) -> Delivery:
    """Each post's event at each connection that should hear it.

    ``posts``: tweet id -> (when the POST was sent, the connections open to its author's followers then);
    ``arrivals``: connection -> its ``(tweet id, arrival time)`` events, same clock. A pair's latency is its
    first event's arrival minus the send; a pair with no event is missing, every further copy a duplicate.
    Events of other tweets (the mix's posts) are ignored.
    """
    out = Delivery()
    seen: dict[tuple[int, int], float] = {}
    counts: dict[tuple[int, int], int] = {}
    for connection, events in arrivals.items():
        for tweet_id, at in events:
            if tweet_id in posts:
                pair = (tweet_id, connection)
                counts[pair] = counts.get(pair, 0) + 1
                if pair not in seen or at < seen[pair]:
                    seen[pair] = at
    for tweet_id, (sent, connections) in posts.items():
        for connection in connections:
            out.expected += 1
            at = seen.get((tweet_id, connection))
            if at is None:
                out.missing += 1
            else:
                latency = 1000 * (at - sent)
                out.latencies_ms.append(latency)
                out.by_tweet.setdefault(tweet_id, []).append(latency)
                out.duplicates += counts[(tweet_id, connection)] - 1
    return out


# --- The connections -------------------------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One held stream. Until its answer's head has come it is opening; then every read is kept, with its time,
    for the pool's sweep to parse."""

    def __init__(self, pool: Pool, index: int, kind: str, ws_key: str | None):
        self.pool, self.index, self.kind, self.ws_key = pool, index, kind, ws_key
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.head = bytearray()
        self.pending: list[tuple[float, bytes]] = []
        self.dechunker: Dechunker | None = None
        self.sse = SseParser() if kind != WS else None
        self.ws = WsParser() if kind == WS else None
        self.arrivals: list[tuple[int, float]] = []
        self.closed: str | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if self.opened.done():
            self.pending.append((now, data))
            self.pool.dirty(self, now)
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            return
        head, rest = bytes(self.head[:end]), bytes(self.head[end + 4 :])
        self.head = bytearray()
        problem = self._check_head(head)
        if problem:
            self.opened.set_exception(ConnectionError(f"{problem}: {rest[:200].decode(errors='replace')}"))
            self.transport.close()
            return
        self.opened.set_result(None)
        if rest:
            self.pending.append((now, rest))
            self.pool.dirty(self, now)

    def _check_head(self, head: bytes) -> str | None:
        status_line, *lines = head.split(b"\r\n")
        status = status_line.split(None, 2)[1] if len(status_line.split()) > 1 else b"?"
        headers = {}
        for line in lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if self.kind == WS:
            if status != b"101":
                return f"HTTP {status.decode(errors='replace')}"
            if headers.get(b"sec-websocket-accept", b"").decode() != ws_accept(self.ws_key or ""):
                return "a wrong Sec-WebSocket-Accept"
            return None
        if status != b"200":
            return f"HTTP {status.decode(errors='replace')}"
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            self.dechunker = Dechunker()
        return None

    def sweep(self) -> int:
        """Parse what arrived; the tweet events found."""
        found = 0
        pending, self.pending = self.pending, []
        for at, data in pending:
            if self.ws is not None:
                for opcode, payload in self.ws.feed(data):
                    if opcode == TEXT:
                        tweet_id = tweet_id_of_frame(payload)
                        if tweet_id is not None:
                            self.arrivals.append((tweet_id, at))
                            found += 1
                    elif opcode == PING and self.transport is not None and not self.transport.is_closing():
                        self.transport.write(ws_frame(PONG, payload))
                    elif opcode == CLOSE:
                        self.closed = self.closed or f"closed by the server ({payload[:2].hex() or 'no code'})"
            else:
                body = self.dechunker.feed(data) if self.dechunker is not None else data
                for event in self.sse.feed(body) if body else ():
                    tweet_id = tweet_id_of_sse(self.kind, event)
                    if tweet_id is not None:
                        self.arrivals.append((tweet_id, at))
                        found += 1
        return found

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed before the answer ({exc or 'end of stream'})"))
        if self.closed is None and not self.pool.closing:
            self.closed = f"closed by the server ({exc or 'end of stream'})"
        self.pool.lost(self)


@dataclass
class Opened:
    """What one round of :meth:`Pool.open_up_to` did."""

    opened: int
    failed: int
    seconds: float
    errors: dict[str, int]


class Pool:
    """The held connections, in an event loop of their own thread (:meth:`call` runs a coroutine there)."""

    def __init__(self, host: str, port: int, tokens: Callable[[int], str], say: Callable[[str], None]):
        self.host, self.port, self.tokens, self.say = host, port, tokens, say
        self.connections: dict[int, _Connection] = {}  # by index
        self.users: dict[int, int] = {}  # index -> user id
        self.closing = False
        self._dirty: set[_Connection] = set()
        self._last_read = 0.0
        self._oldest_unparsed: float | None = None
        self.loop = uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="stream-clients", daemon=True)
        self._thread.start()
        self.call(self._start_sweeper())

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coroutine: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def cpu_seconds(self) -> float:
        """CPU time of the clients' thread (its share of the generator's)."""
        return self.call(self._thread_time())

    @staticmethod
    async def _thread_time() -> float:
        return time.thread_time()

    # --- Opening and closing ---

    def open_up_to(self, users: list[int], *, rate: float, in_flight: int = 256) -> Opened:
        """Open connections ``len(self.connections)`` .. ``len(users) - 1`` (connection ``i`` for ``users[i]``,
        of kind ``kind_of(i)``) at ``rate`` a second, at most ``in_flight`` waiting for their answer."""
        return self.call(self._open(users, rate, in_flight))

    async def _open(self, users: list[int], rate: float, in_flight: int) -> Opened:
        first, started = len(self.connections), time.perf_counter()
        errors: dict[str, int] = {}
        gate = asyncio.Semaphore(in_flight)
        last_said = started

        async def one(index: int) -> None:
            try:
                await self._connect(index, users[index])
            except (OSError, TimeoutError) as error:
                reason = str(error).split(":", 1)[0] or type(error).__name__
                errors[reason] = errors.get(reason, 0) + 1
            finally:
                gate.release()

        tasks = []
        for index in range(first, len(users)):
            due = started + (index - first) / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await gate.acquire()
            tasks.append(asyncio.create_task(one(index)))
            now = time.perf_counter()
            if now - last_said >= 5:
                last_said = now
                self.say(f"    {index + 1:,}/{len(users):,} connections opening ({self.open_count():,} open, "
                         f"{sum(errors.values())} failed)")
        await asyncio.gather(*tasks)
        failed = sum(errors.values())
        return Opened(opened=len(users) - first - failed, failed=failed, seconds=time.perf_counter() - started,
                      errors=errors)

    async def _connect(self, index: int, user: int) -> None:
        kind = kind_of(index)
        token = self.tokens(user)
        key = base64.b64encode(os.urandom(16)).decode() if kind == WS else None
        _, connection = await asyncio.wait_for(self.loop.create_connection(
            lambda: _Connection(self, index, kind, key), self.host, self.port), OPEN_TIMEOUT)
        host = f"Host: {self.host}:{self.port}\r\n"
        if kind == WS:
            request = (f"GET {PATHS[WS]}?stream=user&access_token={token} HTTP/1.1\r\n{host}Upgrade: websocket\r\n"
                       f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        else:
            request = (f"GET {PATHS[kind]} HTTP/1.1\r\n{host}Authorization: Bearer {token}\r\n"
                       "Accept: text/event-stream\r\n\r\n")
        connection.transport.write(request.encode())
        try:
            await asyncio.wait_for(connection.opened, OPEN_TIMEOUT)
        except BaseException:
            connection.transport.close()
            raise
        self.connections[index] = connection
        self.users[index] = user

    def open_count(self) -> int:
        return sum(1 for c in self.connections.values() if c.closed is None)

    def closed_reasons(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.connections.values():
            if c.closed is not None:
                out[c.closed] = out.get(c.closed, 0) + 1
        return out

    def close_all(self) -> None:
        async def close() -> None:
            self.closing = True
            for connection in self.connections.values():
                if connection.transport is not None:
                    connection.transport.close()
            await asyncio.sleep(0.5)

        self.call(close())

    def stop(self) -> None:
        if not self.closing:
            self.close_all()

        async def end() -> None:
            for task in (self._sweeper, self._prober):
                task.cancel()
            await asyncio.gather(self._sweeper, self._prober, return_exceptions=True)

        self.call(end())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)

    # --- Reading ---

    def dirty(self, connection: _Connection, now: float) -> None:
        self._dirty.add(connection)
        self._last_read = now
        if self._oldest_unparsed is None:
            self._oldest_unparsed = now

    def lost(self, connection: _Connection) -> None:
        if connection.pending:
            self._dirty.add(connection)

    async def _start_sweeper(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever())
        self._lags: list[float] = []
        self._prober = asyncio.create_task(self._probe_lag())

    async def _probe_lag(self) -> None:
        """How late the clients' loop wakes from a 10 ms sleep: were it busy, events would be timestamped late."""
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            self._lags.append(1000 * (time.perf_counter() - before - 0.01))

    def lag(self) -> dict:
        """The loop's lateness (ms) since the last call: p99 and max."""
        async def take() -> list[float]:
            lags, self._lags = self._lags, []
            return sorted(lags)

        lags = self.call(take())
        return {"p99_ms": _round(percentile(lags, 99)), "max_ms": _round(lags[-1] if lags else math.nan)}

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_IDLE)
            now = time.perf_counter()
            if self._oldest_unparsed is not None and (now - self._last_read >= SWEEP_IDLE
                                                      or now - self._oldest_unparsed >= SWEEP_LATEST):
                dirty = self._take_dirty()
                for start in range(0, len(dirty), SWEEP_SLICE):
                    for connection in dirty[start : start + SWEEP_SLICE]:
                        connection.sweep()
                    await asyncio.sleep(0)  # reads that come meanwhile are timestamped as they come

    def _take_dirty(self) -> list[_Connection]:
        dirty, self._dirty = self._dirty, set()
        self._oldest_unparsed = None
        return list(dirty)

    def _sweep(self) -> None:
        for connection in self._take_dirty():
            connection.sweep()

    def arrivals(self) -> dict[int, list[tuple[int, float]]]:
        """Every connection's tweet events so far (parsing what is still unparsed first)."""
        async def collect() -> dict[int, list[tuple[int, float]]]:
            self._sweep()
            return {i: list(c.arrivals) for i, c in self.connections.items()}

        return self.call(collect())

    def received(self, tweet_ids: set[int], connections: list[int]) -> int:
        """How many of the (tweet, connection) pairs have their event (after parsing what is unparsed)."""
        async def count() -> int:
            self._sweep()
            held = (self.connections[i] for i in connections if i in self.connections)
            return sum(1 for c in held for t, _ in c.arrivals if t in tweet_ids)

        return self.call(count())
