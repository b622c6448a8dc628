"""The benchmark's load generator against a real HTTP server on a loopback port (an asyncio one, in a thread)."""

import asyncio
import itertools
import json
import math
import socket
import threading
import time

import pytest

from bench import loadgen
from bench.loadgen import Request, Result

HOST = "127.0.0.1"


def _response(status: int, body: bytes, *, close: bool = False) -> bytes:
    reason = {200: "OK", 503: "Service Unavailable"}[status]
    connection = b"Connection: close\r\n" if close else b""
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n".encode()
        + connection
        + b"\r\n"
        + body
    )


class Server:
    """HTTP/1.1 with keep-alive; counts connections and notes each request's target and arrival time.

    /ok → 200, /fail → 503, /echo → what arrived, /slow → 200 after 200 ms, /close → 200 then closes,
    /eof → a body ended by closing the connection, /chunked → a chunked body.
    """

    def __init__(self):
        self.connections = 0
        self.requests: list[tuple[str, float]] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, HOST, 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def times(self, target: str) -> list[float]:
        return [at for seen, at in self.requests if seen == target]

    async def _shutdown(self) -> None:
        self._server.close()
        for writer in self._writers:
            writer.close()  # the handlers see the end of their connection and return
        await asyncio.gather(*(asyncio.all_tasks() - {asyncio.current_task()}))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
                method, target, _ = request_line.split(" ")
                headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                self.requests.append((target, time.perf_counter()))
                path = target.partition("?")[0]
                if path == "/slow":
                    await asyncio.sleep(0.2)
                if path == "/fail":
                    writer.write(_response(503, b'{"detail": "unavailable"}'))
                elif path == "/echo":
                    echo = {"method": method, "headers": headers, "body": body.decode()}
                    writer.write(_response(200, json.dumps(echo).encode()))
                elif path == "/close":
                    writer.write(_response(200, b'{"closing": true}', close=True))
                    return
                elif path == "/eof":
                    writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"until the end")
                    return
                elif path == "/chunked":
                    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    writer.write(b"4\r\nchun\r\n3;x=y\r\nked\r\n0\r\n\r\n")
                else:
                    writer.write(_response(200, b'{"ok": true}'))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client is gone
        finally:
            self._writers.discard(writer)
            writer.close()


@pytest.fixture
def server():
    server = Server()
    yield server
    server.stop()


def get(path: str) -> Request:
    return Request("GET", path, {})


def test_closed_loop_counts_answers_by_status(server):
    paths = itertools.cycle(["/ok", "/fail"])
    result = loadgen.closed_loop(HOST, server.port, lambda: get(next(paths)), concurrency=4, duration=0.3, warmup=0.1)

    assert set(result.statuses) == {200, 503}
    ok, failed = result.statuses[200], result.statuses[503]
    assert abs(ok - failed) <= 1  # the recorded requests are a consecutive run of the alternation
    assert result.completed == len(result.latencies_ms) == ok + failed
    assert (result.ok, result.errors) == (ok, failed)
    assert len(server.requests) > result.completed  # the warm-up's were sent, not recorded
    assert result.concurrency == 4 and result.offered_rps is None and result.bodies is None
    assert result.duration_s >= 0.3 and result.cpu_s > 0
    assert all(latency > 0 for latency in result.latencies_ms)


def test_closed_loop_keeps_its_connections_alive(server):
    result = loadgen.closed_loop(HOST, server.port, lambda: get("/ok"), concurrency=4, duration=0.3)

    assert result.statuses == {200: result.completed} and result.completed > 4
    assert server.connections == 4


def test_posts_arrive_intact_and_bodies_are_kept_in_order(server):
    counter = itertools.count()
    sent = []

    def post() -> Request:
        body = json.dumps({"content": f"tweet {next(counter)} ✓ — ünïcode"}, ensure_ascii=False).encode()
        sent.append(body)
        return Request("POST", "/echo?x=1", {"Authorization": "Bearer token"}, body)

    result = loadgen.closed_loop(HOST, server.port, post, concurrency=1, duration=0.2, keep_bodies=True)

    assert result.completed > 0 and result.statuses == {200: result.completed}
    assert len(result.bodies) == result.completed
    for body, echo in zip(sent, map(json.loads, result.bodies), strict=False):
        assert echo["method"] == "POST"
        assert echo["body"].encode() == body
        assert echo["headers"]["content-length"] == str(len(body))
        assert echo["headers"]["content-type"] == "application/json"
        assert echo["headers"]["authorization"] == "Bearer token"
        assert echo["headers"]["host"] == f"{HOST}:{server.port}"


def test_open_loop_sends_the_scheduled_number_of_requests(server):
    answers = []
    result = loadgen.open_loop(
        HOST,
        server.port,
        lambda: get("/ok"),
        rate=200,
        duration=0.5,
        warmup=0.1,
        on_response=lambda request, status, body, latency_ms: answers.append((request.path, status, body)),
    )

    # Requests are due at i / rate: 100 in the window after 20 in the warm-up, however the timing went.
    assert result.statuses == {200: 100} and result.completed == 100
    assert len(server.requests) == 120
    assert answers == [("/ok", 200, b'{"ok": true}')] * 120  # warm-up answers included
    assert result.offered_rps == 200 and result.concurrency is None
    assert min(result.latencies_ms) > 0  # though uvloop's timers wake up early at times
    assert result.duration_s >= 0.5 - 0.01


def test_open_loop_measures_latency_from_the_schedule(server):
    # One connection, 200 ms an answer, one request due every 50 ms: the backlog grows, and so must the latencies.
    result = loadgen.open_loop(HOST, server.port, lambda: get("/slow"), rate=20, duration=0.5, max_connections=1)

    assert result.statuses == {200: 10}
    assert server.connections == 1
    assert min(result.latencies_ms) >= 200
    assert result.percentile(99) > 1000
    assert result.percentile(100) == max(result.latencies_ms) > 1000


@pytest.mark.parametrize("path", ["/close", "/eof", "/chunked"])
def test_other_ways_of_ending_an_answer(server, path):
    result = loadgen.closed_loop(HOST, server.port, lambda: get(path), concurrency=2, duration=0.2, keep_bodies=True)

    assert result.completed > 2 and result.statuses == {200: result.completed}
    expected = {"/close": b'{"closing": true}', "/eof": b"until the end", "/chunked": b"chunked"}[path]
    assert set(result.bodies) == {expected}
    if path == "/chunked":
        assert server.connections == 2
    else:  # a new connection for every request
        assert server.connections >= result.completed


def test_the_standard_event_loop_works_too(server, monkeypatch):
    monkeypatch.setattr(loadgen, "uvloop", None)
    result = loadgen.closed_loop(HOST, server.port, lambda: get("/ok"), concurrency=2, duration=0.1)

    assert result.completed > 0 and result.statuses == {200: result.completed}
    assert server.connections == 2


def test_a_server_that_is_down_gives_status_0():
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]  # free, and nothing listens on it once the socket is closed

    closed = loadgen.closed_loop(HOST, port, lambda: get("/ok"), concurrency=2, duration=0.1)
    opened = loadgen.open_loop(HOST, port, lambda: get("/ok"), rate=100, duration=0.1)

    assert set(closed.statuses) == {0} and closed.errors == closed.statuses[0] > 0
    assert closed.completed == closed.ok == 0 and math.isnan(closed.percentile(50))
    assert opened.statuses == {0: 10} and opened.completed == 0
    assert opened.summary()["p99"] is None


def test_run_concurrently_runs_the_jobs_together(server):
    reads, writes = loadgen.run_concurrently(
        loadgen.closed_loop_async(HOST, server.port, lambda: get("/ok?reads"), concurrency=2, duration=0.4),
        loadgen.open_loop_async(HOST, server.port, lambda: get("/ok?writes"), rate=50, duration=0.4),
    )

    assert reads.concurrency == 2 and reads.completed > 0 and reads.statuses == {200: reads.completed}
    assert writes.offered_rps == 50 and writes.statuses == {200: 20}
    read_times, write_times = server.times("/ok?reads"), server.times("/ok?writes")
    assert min(read_times) < max(write_times) and min(write_times) < max(read_times)


def test_a_failing_callback_ends_the_run_with_its_exception(server):
    def make_request() -> Request:
        raise LookupError("no more users")

    def on_response(request, status, body, latency_ms):
        raise KeyError("tweet_id")

    with pytest.raises(LookupError):
        loadgen.closed_loop(HOST, server.port, make_request, concurrency=2, duration=0.1)
    with pytest.raises(KeyError):
        loadgen.open_loop(HOST, server.port, lambda: get("/ok"), rate=100, duration=0.2, on_response=on_response)


def test_result_figures():
    result = Result(
        latencies_ms=[float(ms) for ms in range(1, 101)],
        statuses={200: 90, 503: 10, 0: 5},
        duration_s=2.0,
        cpu_s=0.5,
        offered_rps=None,
        concurrency=8,
        bodies=None,
    )

    assert (result.completed, result.ok, result.errors, result.rps) == (100, 90, 15, 50.0)
    assert result.percentile(0) == 1 and result.percentile(100) == 100 and result.percentile(50) == 50.5
    assert result.cpu_share() == 0.25
    summary = result.summary()
    assert summary["p99"] == pytest.approx(99.01) and summary["max"] == 100 and summary["mean"] == 50.5
    assert summary["statuses"] == {"0": 5, "200": 90, "503": 10}
    assert json.loads(json.dumps(summary)) == summary
