"""The stream phase's client pieces (``bench/streams.py``): decoding, parsing and matching, fed byte by byte
where a split could break them, and its connections against a small real server (SSE and WebSocket)."""

import asyncio
import base64
import hashlib
import threading
import time

import orjson
import pytest

from bench import streams
from bench.streams import Dechunker, SseEvent, SseParser, WsParser

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455's, written out again: the client's must agree


def _chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
def test_dechunker_joins_the_body_whatever_the_reads(step):
    body = [b":)\n\n", b"event: tweet\nid: 5\ndata: {}\n\n", b"x" * 300]
    data = _chunked(*body)
    decoder = Dechunker()
    out = b"".join(decoder.feed(data[i : i + step]) for i in range(0, len(data), step))
    assert out == b"".join(body)
    assert decoder.done


def test_dechunker_takes_chunk_extensions_and_is_not_done_early():
    decoder = Dechunker()
    assert decoder.feed(b"3;name=value\r\nabc\r\n") == b"abc"
    assert not decoder.done
    assert decoder.feed(b"0\r\n\r\n") == b""
    assert decoder.done


@pytest.mark.parametrize("step", [1, 4, 1000])
def test_sse_parser_events_and_comments(step):
    text = (b":)\n\nevent: tweet\nid: 42\ndata: {\"tweet_id\": \"42\"}\n\n:thump\n\n"
            b"event: update\r\ndata: a\r\ndata: b\r\n\r\ndata: plain\n\n")
    parser = SseParser()
    events = []
    for i in range(0, len(text), step):
        events += parser.feed(text[i : i + step])
    assert events == [SseEvent("tweet", b'{"tweet_id": "42"}', b"42"), SseEvent("update", b"a\nb", None),
                      SseEvent("message", b"plain", None)]
    assert parser.comments == 2


def test_sse_parser_keeps_an_unfinished_event():
    parser = SseParser()
    assert parser.feed(b"event: tweet\ndata: 1") == []
    assert parser.feed(b"\n") == []
    assert parser.feed(b"\n") == [SseEvent("tweet", b"1", None)]


def _server_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    length = len(payload)
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        return bytes([first, length]) + payload
    if length < 1 << 16:
        return bytes([first, 126]) + length.to_bytes(2, "big") + payload
    return bytes([first, 127]) + length.to_bytes(8, "big") + payload


@pytest.mark.parametrize("step", [1, 5, 100_000])
def test_ws_parser_frames_of_every_length_and_fragments(step):
    small, medium, large = b"a" * 10, b"b" * 300, b"c" * 70_000
    data = (_server_frame(streams.TEXT, small) + _server_frame(streams.TEXT, medium)
            + _server_frame(streams.TEXT, large) + _server_frame(streams.PING, b"hi")
            + _server_frame(streams.TEXT, b"one ", fin=False) + _server_frame(streams.PING, b"")
            + _server_frame(streams.CONTINUATION, b"two"))
    parser = WsParser()
    out = []
    for i in range(0, len(data), step):
        out += parser.feed(data[i : i + step])
    assert out == [(streams.TEXT, small), (streams.TEXT, medium), (streams.TEXT, large), (streams.PING, b"hi"),
                   (streams.PING, b""), (streams.TEXT, b"one two")]


@pytest.mark.parametrize("size", [0, 5, 200, 70_000])
def test_client_frames_are_masked_and_parse_back(size):
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    frame = streams.ws_frame(streams.PONG, payload, key=b"\x01\x02\x03\x04")
    assert frame[1] & 0x80  # masked, as a client's must be
    if size:
        assert payload not in frame
    assert WsParser().feed(frame) == [(streams.PONG, payload)]


def test_ws_accept_is_rfc_6455s_example():
    assert streams.ws_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_tweet_ids_of_each_kind_of_event():
    status = orjson.dumps({"id": "77", "account": {"id": "5"}})
    assert streams.tweet_id_of_sse(streams.MASTODON_SSE, SseEvent("update", status)) == 77
    assert streams.tweet_id_of_sse(streams.MASTODON_SSE, SseEvent("delete", b"77")) is None
    assert streams.tweet_id_of_sse(streams.V1_SSE, SseEvent("tweet", b'{"tweet_id": "78"}', b"78")) == 78
    assert streams.tweet_id_of_sse(streams.V1_SSE, SseEvent("tweet", b'{"tweet_id": "79"}', None)) == 79
    assert streams.tweet_id_of_sse(streams.V1_SSE, SseEvent("delete", b'{"tweet_id": "79"}')) is None
    frame = orjson.dumps({"stream": ["user"], "event": "update", "payload": status.decode()})
    assert streams.tweet_id_of_frame(frame) == 77
    assert streams.tweet_id_of_frame(orjson.dumps({"stream": ["user"], "event": "delete", "payload": "77"})) is None
    assert streams.tweet_id_of_frame(b'{"error": "Unknown stream type", "status": 400}') is None


def test_kinds_are_half_websocket_in_any_prefix():
    kinds = [streams.kind_of(i) for i in range(8)]
    assert kinds.count(streams.WS) == 4
    assert kinds.count(streams.MASTODON_SSE) == kinds.count(streams.V1_SSE) == 2


def test_match_counts_latencies_misses_and_duplicates():
    posts = {100: (10.0, [0, 1, 2]), 200: (20.0, [0, 1])}
    arrivals = {0: [(100, 10.05), (200, 20.02), (999, 11.0)],  # 999: a tweet of the mix, not ours
                1: [(100, 10.2), (100, 10.3), (200, 20.5)],  # a second copy of 100
                2: []}  # 100 never came
    delivery = streams.match(posts, arrivals)
    assert delivery.expected == 5
    assert delivery.missing == 1
    assert delivery.duplicates == 1
    assert sorted(round(x) for x in delivery.latencies_ms) == [20, 50, 200, 500]
    assert sorted(round(x) for x in delivery.by_tweet[100]) == [50, 200]
    summary = delivery.summary()
    assert summary["delivered"] == 4
    assert summary["delivered_share"] == 0.8
    assert summary["max"] == 500.0
    # tweet 100: first at 50 ms, last at 200 ms; tweet 200: 20 ms, 500 ms
    assert summary["first_ms_median"] == 35.0
    assert summary["spread_ms_median"] == 315.0


def test_match_takes_the_first_copy_whatever_the_order():
    delivery = streams.match({1: (0.0, [0])}, {0: [(1, 0.3), (1, 0.1)]})
    assert [round(x) for x in delivery.latencies_ms] == [100]
    assert delivery.duplicates == 1


def test_percentile_interpolates():
    assert streams.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert streams.percentile([5.0], 99) == 5.0
    assert streams.percentile([], 50) != streams.percentile([], 50)  # nan


# --- Against a real server -------------------------------------------------------------------------------------


class StreamServer:
    """A loopback server speaking as the stream process does: SSE answers chunked, WebSocket after a 101,
    a ping on every WebSocket; ``push(tweet_id)`` sends an update to every open stream."""

    def __init__(self):
        self.writers: list[tuple[str, asyncio.StreamWriter]] = []
        self.pongs = 0
        self.paths: list[str] = []
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(5)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _serve(self, reader, writer):
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        target = head.split()[1]
        self.paths.append(target)
        if "access_token=refused" in target or "Bearer refused" in head:
            writer.write(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
            writer.close()
            return
        if target.startswith("/api/v1/streaming?"):
            key = next(line.split(":", 1)[1].strip() for line in head.split("\r\n")
                       if line.lower().startswith("sec-websocket-key"))
            accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
            writer.write(f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode() + _server_frame(streams.PING, b"p"))
            self.writers.append(("ws", writer))
            parser = WsParser()
            while data := await reader.read(1024):
                self.pongs += sum(1 for opcode, payload in parser.feed(data)
                                  if opcode == streams.PONG and payload == b"p")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + _chunked(b":)\n\n")[:-5])
            self.writers.append(("v1" if target.startswith("/v1/") else "mastodon", writer))
            await reader.read()

    def push(self, tweet_id: int, copies: int = 1):
        status = orjson.dumps({"id": str(tweet_id)})

        def send():
            for kind, writer in self.writers:
                if kind == "ws":
                    data = _server_frame(streams.TEXT, orjson.dumps({"stream": ["user"], "event": "update",
                                                                     "payload": status.decode()}))
                elif kind == "v1":
                    data = _chunked(b"event: tweet\nid: %d\ndata: {}\n\n" % tweet_id)[:-5]
                else:
                    data = _chunked(b"event: update\ndata: " + status + b"\n\n")[:-5]
                for _ in range(copies):
                    writer.write(data)

        self.loop.call_soon_threadsafe(send)

    def stop(self):
        self.loop.call_soon_threadsafe(self.server.close)


@pytest.fixture
def server():
    s = StreamServer()
    yield s
    s.stop()


def test_pool_opens_each_kind_matches_events_and_answers_pings(server):
    tokens = {u: f"token-{u}" for u in range(1, 9)}
    pool = streams.Pool("127.0.0.1", server.port, tokens.__getitem__, say=lambda m: None)
    try:
        opened = pool.open_up_to(list(range(1, 9)), rate=1000)
        assert (opened.opened, opened.failed) == (8, 0)
        assert pool.open_count() == 8
        assert sorted(p.split("?")[0] for p in server.paths) == sorted(
            [streams.PATHS[streams.kind_of(i)] for i in range(8)])
        assert any("access_token=token-1" in p for p in server.paths)
        sent = time.perf_counter()
        server.push(500)
        server.push(600, copies=2)
        deadline = time.monotonic() + 5
        while pool.received({500, 600}, list(range(8))) < 24 and time.monotonic() < deadline:
            time.sleep(0.02)
        delivery = streams.match({500: (sent, list(range(8))), 600: (sent, list(range(8)))}, pool.arrivals())
        assert (delivery.expected, delivery.missing, delivery.duplicates) == (16, 0, 8)
        assert all(0 <= x < 5000 for x in delivery.latencies_ms)
        deadline = time.monotonic() + 5
        while server.pongs < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.pongs == 4  # one for each WebSocket's ping
    finally:
        pool.stop()


def test_pool_counts_refused_connections(server):
    users = [1, 2, 3, 4]
    pool = streams.Pool("127.0.0.1", server.port, lambda u: "refused" if u % 2 else "fine", say=lambda m: None)
    try:
        opened = pool.open_up_to(users, rate=1000)
        assert (opened.opened, opened.failed) == (2, 2)
        assert opened.errors == {"HTTP 401": 2}
    finally:
        pool.stop()
