"""The benchmark's load generator: a small asyncio HTTP/1.1 client, built to stay out of the measurement's way.

Two ways to load a server
-------------------------
*Closed loop* (:func:`closed_loop`): ``concurrency`` keep-alive connections, each sending its next request as soon
as the previous answer arrived. The server sets the pace, so this finds its throughput at that concurrency. Its
latencies flatter a slow server, though: while the server stalls, the generator waits with it and sends nothing,
so the requests that real users would have sent during the stall -- and that would have waited for it -- are never
measured. That blind spot is called *coordinated omission*.

*Open loop* (:func:`open_loop`): requests are due on a fixed schedule, request ``i`` at ``t0 + i / rate``, whether
or not earlier ones were answered, the way independent users arrive. Each goes out on an idle keep-alive connection
(a new one is opened if none is idle, up to ``max_connections``; beyond that it queues for one), and its latency is
measured from the time it was *due*, not from when it could actually be sent. A server that falls behind therefore
shows latencies growing with its backlog instead of a politely lower request rate: no coordinated omission. Use it
to measure latency at a given load.

Both run ``warmup`` seconds unrecorded, then record the requests *sent* during the next ``duration`` seconds, wait
(at most :data:`DRAIN_TIMEOUT` seconds) for their answers, and return a :class:`Result`. ``duration_s`` is the
measured window up to the last of those answers, and ``cpu_s`` the CPU time of the thread running the event loop
meanwhile: the generator's own cost, including ``make_request`` and ``on_response`` (but not other threads of the
process, e.g. an in-process test server). Latencies are those of HTTP answers of any status; a request that got no
answer (refused connection, connection closed mid-answer, still unanswered after the drain) counts as status 0.

The sync functions run their own event loop (uvloop's when installed) and return. To run several loads at once in
one event loop -- a read load and a write load together, say -- pass the coroutines of the ``*_async`` variants to
:func:`run_concurrently`::

    reads, writes = run_concurrently(
        open_loop_async(host, port, make_read, rate=500, duration=30),
        open_loop_async(host, port, make_write, rate=5, duration=30),
    )

Jobs sharing a loop share its thread, so each one's ``cpu_s`` is then the cost of all of them during its window.

The client speaks just enough HTTP/1.1 for a JSON API: one request at a time per connection (no pipelining),
bodies delimited by ``Content-Length``, ``Transfer-Encoding: chunked`` or the end of the connection, and
``Connection: close`` honoured by opening a new connection for the next request.
"""

from __future__ import annotations

import asyncio
import functools
import math
import statistics
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

try:
    import uvloop
except ImportError:  # optional: the standard event loop works as well, only slower
    uvloop = None

__all__ = [
    "DRAIN_TIMEOUT",
    "Request",
    "Result",
    "closed_loop",
    "closed_loop_async",
    "open_loop",
    "open_loop_async",
    "run_concurrently",
]

# Seconds to wait for the answers still outstanding when the window ends; those not in by then are errors.
DRAIN_TIMEOUT = 10.0
# An idle connection older than this is closed rather than reused: gunicorn closes keep-alive connections after
# 2 s without a request, and a request written just as that happens would fail for no fault of the server.
IDLE_LIMIT = 1.5


@dataclass(frozen=True)
class Request:
    method: str  # "GET" / "POST"
    path: str  # "/v1/timeline/home?limit=20"
    headers: dict[str, str]  # e.g. {"Authorization": "Bearer ..."}; Host, Content-Length and Content-Type are added
    body: bytes | None = None  # a JSON body, sent with Content-Type: application/json


@dataclass
class Result:
    latencies_ms: list[float]  # one per HTTP answer (any status), in the order they arrived
    statuses: dict[int, int]  # status code -> count; requests that got no answer count under 0
    duration_s: float  # wall time of the measured window, up to its last answer
    cpu_s: float  # CPU time (user + sys) of the event loop's thread during the window: the generator's own cost
    offered_rps: float | None  # the open loop's schedule rate; None for a closed loop
    concurrency: int | None  # the closed loop's connections; None for an open loop
    bodies: list[bytes] | None  # answer bodies, in the order of latencies_ms, if the closed loop kept them

    @property
    def completed(self) -> int:
        """Requests that got an HTTP answer, whatever its status."""
        return len(self.latencies_ms)

    @property
    def ok(self) -> int:
        return sum(count for status, count in self.statuses.items() if 200 <= status < 300)

    @property
    def errors(self) -> int:
        """Answers other than 2xx, plus requests that got no answer."""
        return sum(self.statuses.values()) - self.ok

    @property
    def rps(self) -> float:
        return self.completed / self.duration_s if self.duration_s > 0 else 0.0

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile (0..100) of the latencies in ms, interpolated linearly; nan if there are none."""
        return percentile(sorted(self.latencies_ms), p)

    def cpu_share(self) -> float:
        """The share of one core the generator used: near 1.0 means the generator, not the server, set the pace."""
        return self.cpu_s / self.duration_s if self.duration_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """The figures as a JSON-ready dict; latencies in ms, None where there were no answers."""
        ordered = sorted(self.latencies_ms)

        def ms(value: float) -> float | None:
            return None if math.isnan(value) else round(value, 3)

        return {
            "rps": round(self.rps, 1),
            "ok": self.ok,
            "errors": self.errors,
            **{f"p{p}": ms(percentile(ordered, p)) for p in (50, 90, 95, 99)},
            "max": ms(ordered[-1] if ordered else math.nan),
            "mean": ms(statistics.fmean(ordered) if ordered else math.nan),
            "cpu_share": round(self.cpu_share(), 3),
            "offered_rps": self.offered_rps,
            "concurrency": self.concurrency,
            "duration_s": round(self.duration_s, 3),
            "completed": self.completed,
            "statuses": {str(status): count for status, count in sorted(self.statuses.items())},
        }


def percentile(ordered: list[float], p: float) -> float:
    """The ``p``-th percentile (0..100) of sorted values, interpolated linearly; nan if none."""
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100, not {p}")
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * p / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# --- HTTP/1.1 over asyncio ---------------------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time.

    :meth:`request` writes a request and returns a future of ``(status, body, perf_counter() when the answer was
    complete)``, which fails with ConnectionError if the connection ends first.
    """

    def __init__(self, live: set[_Connection]):
        self._live = live  # the client's open connections, all closed when a run ends
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes, float]] | None = None
        self._status = 0  # the answer's status once its head has been read, else 0
        self._length: int | None = None  # its body's length; -1 if chunked; None if until the connection ends
        self._keep_alive = True

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._live.add(self)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes, float]]:
        self._waiter = waiter = self._loop.create_future()
        self.transport.write(data)
        return waiter

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # nothing was asked (say, a 408 on an idle connection): drop the connection
            self.close()
            return
        buffer = self._buffer
        buffer += data
        if not self._status:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self._read_head(bytes(buffer[:end]))
            del buffer[: end + 4]
        if self._length is None:  # wait for the connection to end
            return
        if self._length < 0:
            chunked = _dechunk(buffer)
            if chunked is None:
                return
            body, used = chunked
        else:
            if len(buffer) < self._length:
                return
            body, used = bytes(buffer[: self._length]), self._length
        del buffer[:used]
        self._answer(body)

    def eof_received(self) -> None:
        self.closed = True  # returning None closes the transport, then connection_lost() delivers or fails

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._live.discard(self)
        if self._waiter is None:
            return
        if self._status and self._length is None:
            self._answer(bytes(self._buffer))
        else:
            waiter, self._waiter = self._waiter, None
            if not waiter.done():
                waiter.set_exception(ConnectionError("the connection ended before the answer was complete"))

    def _read_head(self, head: bytes) -> None:
        status_line, *lines = head.split(b"\r\n")
        version, status = status_line.split(None, 2)[:2]
        self._status = int(status)
        length = None
        chunked = False
        keep_alive = version == b"HTTP/1.1"
        for line in lines:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                value = value.lower()
                if b"close" in value:
                    keep_alive = False
                elif b"keep-alive" in value:
                    keep_alive = True
        if self._status in (204, 304):
            length = 0
        elif chunked:
            length = -1
        self._length = length
        self._keep_alive = keep_alive and length is not None

    def _answer(self, body: bytes) -> None:
        status, self._status = self._status, 0
        waiter, self._waiter = self._waiter, None
        if not self._keep_alive:
            self.close()
        if not waiter.done():  # it is, if the request was abandoned
            waiter.set_result((status, body, time.perf_counter()))


def _dechunk(buffer: bytearray) -> tuple[bytes, int] | None:
    """A complete chunked body at the start of ``buffer`` and the bytes it takes up, or None if it is incomplete."""
    parts = []
    position = 0
    while True:
        line_end = buffer.find(b"\r\n", position)
        if line_end < 0:
            return None
        size = int(bytes(buffer[position:line_end]).split(b";", 1)[0], 16)
        position = line_end + 2
        if size == 0:  # the last chunk, then trailer fields (if any) and an empty line
            if buffer.startswith(b"\r\n", position):
                return b"".join(parts), position + 2
            end = buffer.find(b"\r\n\r\n", position)
            return None if end < 0 else (b"".join(parts), end + 4)
        if len(buffer) < position + size + 2:
            return None
        parts.append(bytes(buffer[position : position + size]))
        position += size + 2


class _Client:
    """Keep-alive connections to one server: at most ``max_connections``, reused last-in first-out."""

    def __init__(self, host: str, port: int, max_connections: int):
        self._host = host
        self._port = port
        self._host_header = f"Host: {host}:{port}\r\n"
        self._max = max_connections
        self._open = 0  # connections open or being opened
        self._idle: list[_Connection] = []
        self._waiters: deque[asyncio.Future[_Connection | None]] = deque()
        self._live: set[_Connection] = set()

    def encode(self, request: Request) -> bytes:
        head = [f"{request.method} {request.path} HTTP/1.1\r\n", self._host_header]
        head.extend(f"{name}: {value}\r\n" for name, value in request.headers.items())
        body = request.body
        if body is not None:
            head.append(f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n")
        head.append("\r\n")
        data = "".join(head).encode("latin-1")
        return data if body is None else data + body

    async def exchange(self, data: bytes) -> tuple[int, bytes, float]:
        """Send an encoded request and return ``(status, body, when the answer was complete)``; OSError if none."""
        connection = await self._acquire()
        try:
            return await connection.request(data)
        except BaseException:
            connection.close()  # failed or abandoned halfway: not reusable
            raise
        finally:
            self._release(connection)

    def close(self) -> None:
        for connection in list(self._live):
            connection.close()

    async def _acquire(self) -> _Connection:
        now = time.perf_counter()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < IDLE_LIMIT:
                return connection
            connection.close()
            self._open -= 1
        if self._open < self._max:
            self._open += 1
        else:
            # (Cancelled only when a run ends: a connection handed to a cancelled waiter is left to close().)
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            handed = await waiter
            if handed is not None:
                return handed
            # else: a connection closed and passed its slot on to us
        try:
            _, connection = await asyncio.get_running_loop().create_connection(
                lambda: _Connection(self._live), self._host, self._port
            )
        except BaseException:
            self._free_slot()
            raise
        return connection

    def _release(self, connection: _Connection) -> None:
        if connection.closed:
            self._free_slot()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        connection.idle_since = time.perf_counter()
        self._idle.append(connection)

    def _free_slot(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._open -= 1


# --- The loads ---------------------------------------------------------------------------------------------------


class _Recorder:
    """What one run measured: the outcomes of the requests sent in its window."""

    def __init__(self, keep_bodies: bool):
        self.latencies_ms: list[float] = []
        self.statuses: dict[int, int] = {}
        self.bodies: list[bytes] | None = [] if keep_bodies else None
        self._window_start = 0.0
        self._cpu_start = 0.0

    def start_window(self, at: float) -> None:
        self._window_start = at
        self._cpu_start = time.thread_time()

    def answer(self, status: int, body: bytes, latency_s: float) -> None:
        self.latencies_ms.append(latency_s * 1000.0)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if self.bodies is not None:
            self.bodies.append(body)

    def no_answer(self) -> None:
        self.statuses[0] = self.statuses.get(0, 0) + 1

    def result(self, *, offered_rps: float | None = None, concurrency: int | None = None) -> Result:
        return Result(
            latencies_ms=self.latencies_ms,
            statuses=self.statuses,
            duration_s=time.perf_counter() - self._window_start,
            cpu_s=time.thread_time() - self._cpu_start,
            offered_rps=offered_rps,
            concurrency=concurrency,
            bodies=self.bodies,
        )


async def _finish(tasks: set[asyncio.Task] | list[asyncio.Task], deadline: float) -> None:
    """Wait for ``tasks`` until ``deadline`` (a perf_counter time), cancel the rest; raise the first one's failure."""
    if not tasks:
        return
    done, pending = await asyncio.wait(
        tasks, timeout=max(0.0, deadline - time.perf_counter()), return_when=asyncio.FIRST_EXCEPTION
    )
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    failures = [task.exception() for task in done | pending if not task.cancelled()]  # all retrieved: no warnings
    for failure in failures:
        if failure is not None:
            raise failure


async def closed_loop_async(
    host: str,
    port: int,
    make_request: Callable[[], Request],
    *,
    concurrency: int,
    duration: float,
    warmup: float = 0.0,
    keep_bodies: bool = False,
) -> Result:
    """Load the server with ``concurrency`` keep-alive connections, each sending the next request (from
    ``make_request()``) as soon as the previous answer arrived, for ``warmup`` unrecorded seconds and then
    ``duration`` recorded ones. With ``keep_bodies``, the answers' bodies are kept in ``Result.bodies``.

    ``closed_loop`` runs it in an event loop of its own; this coroutine is for
    :func:`run_concurrently` or a caller's own loop."""
    if concurrency < 1 or duration <= 0 or warmup < 0:
        raise ValueError("need concurrency >= 1, duration > 0 and warmup >= 0")
    client = _Client(host, port, concurrency)
    record = _Recorder(keep_bodies)
    clock = time.perf_counter
    window_start = clock() + warmup
    window_end = window_start + duration

    async def user() -> None:
        while clock() < window_end:
            data = client.encode(make_request())
            sent = clock()
            measured = sent >= window_start
            try:
                status, body, answered = await client.exchange(data)
            except OSError:
                if measured:
                    record.no_answer()
                continue
            except asyncio.CancelledError:
                if measured:
                    record.no_answer()
                raise
            if measured:
                record.answer(status, body, answered - sent)

    users = [asyncio.create_task(user()) for _ in range(concurrency)]
    try:
        if warmup:
            await asyncio.sleep(warmup)
        record.start_window(window_start)
        await _finish(users, window_end + DRAIN_TIMEOUT)
    finally:
        client.close()
    return record.result(concurrency=concurrency)


async def open_loop_async(
    host: str,
    port: int,
    make_request: Callable[[], Request],
    *,
    rate: float,
    duration: float,
    max_connections: int = 512,
    warmup: float = 0.0,
    on_response: Callable[[Request, int, bytes, float], None] | None = None,
) -> Result:
    """Offer ``rate`` requests a second, evenly spaced and regardless of the answers, for ``warmup`` unrecorded
    seconds and then ``duration`` recorded ones; latencies count from each request's due time. ``on_response(request,
    status, body, latency_ms)`` is called, synchronously, on every HTTP answer, warm-up ones included; an exception
    from it (or from ``make_request``) ends the run and is raised.

    ``open_loop`` runs it in an event loop of its own; this coroutine is for
    :func:`run_concurrently` or a caller's own loop."""
    if rate <= 0 or duration * rate < 1 or warmup < 0 or max_connections < 1:
        raise ValueError(
            "need rate > 0, at least one request in the window (rate * duration >= 1), warmup >= 0 "
            "and max_connections >= 1"
        )
    client = _Client(host, port, max_connections)
    record = _Recorder(keep_bodies=False)
    in_flight: set[asyncio.Task] = set()
    failures: list[BaseException] = []

    async def send(request: Request, start: float, measured: bool) -> None:
        try:
            status, body, answered = await client.exchange(client.encode(request))
        except OSError:
            if measured:
                record.no_answer()
            return
        except asyncio.CancelledError:
            if measured:
                record.no_answer()
            raise
        latency = answered - start
        if measured:
            record.answer(status, body, latency)
        if on_response is not None:
            on_response(request, status, body, latency * 1000.0)

    def reap(task: asyncio.Task) -> None:
        in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            failures.append(task.exception())

    # Request i is due at t0 + i / rate; those due before t0 + warmup are not recorded. (The epsilon keeps
    # 1.1 * 50 = 55.00000000000001 from adding a request.)
    first = math.ceil(warmup * rate - 1e-9)
    count = math.ceil((warmup + duration) * rate - 1e-9)
    t0 = time.perf_counter()
    try:
        for i in range(count):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # late ones go out at once, each keeping its due time
            if failures:
                raise failures[0]
            if i == first:
                record.start_window(t0 + warmup)
            # uvloop's millisecond timers can wake us up to a millisecond early: then the clock starts at the send.
            task = asyncio.create_task(send(make_request(), min(due, time.perf_counter()), i >= first))
            in_flight.add(task)
            task.add_done_callback(reap)
        await _finish(in_flight, time.perf_counter() + DRAIN_TIMEOUT)
        if failures:
            raise failures[0]
    finally:
        client.close()
    return record.result(offered_rps=rate)


def _run(main: Awaitable[Any]) -> Any:
    return uvloop.run(main) if uvloop is not None else asyncio.run(main)


def _blocking(load: Callable[..., Awaitable[Result]]) -> Callable[..., Result]:
    """The blocking form of a load coroutine: the same arguments, run in an event loop of its own."""

    @functools.wraps(load)
    def run(*args, **kwargs) -> Result:
        return _run(load(*args, **kwargs))

    return run


closed_loop = _blocking(closed_loop_async)
open_loop = _blocking(open_loop_async)


def run_concurrently(*jobs: Awaitable[Result]) -> list[Result]:
    """Run coroutines of :func:`open_loop_async` / :func:`closed_loop_async` together in one event loop and return
    their Results in the same order. The first job to raise ends them all."""

    async def main() -> list[Result]:
        return list(await asyncio.gather(*jobs))

    return _run(main())
