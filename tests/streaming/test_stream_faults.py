"""The stream process under faults: a client that stops reading, and Redis restarted
under open streams (they close cleanly, new ones wait for Redis, and a /v1 client
resumes where it was, without a gap)."""
import shutil
import socket
import subprocess

import orjson
import pytest
import redis as redis_py
import requests
from rest_framework.test import APIClient

from streaming import events
from tests.helpers import free_port, on_one_redis_server, tool_missing, wait_for
from tweets import services as tweet_services

from .conftest import start_stream_server
from .sse import SseReader

pytestmark = [pytest.mark.django_db(transaction=True)]


def jwt_of(client: APIClient) -> str:
    return client._credentials["HTTP_AUTHORIZATION"].split()[1]


def test_a_client_that_stops_reading_is_dropped_and_slows_no_one(tmp_path, make_user, api, redis):
    server = start_stream_server(tmp_path, {"STREAM_BUFFER_EVENTS": "50"})
    try:
        slow_user, fast_user, author = (make_user(username=n) for n in ("slow", "fast", "author"))
        for user in (slow_user, fast_user):
            assert api(user).post(f"/v1/users/{author.id}/follow").status_code == 200
        # A client with a tiny receive window that reads the headers and then nothing more.
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(f"GET /api/v1/streaming/user HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     f"Authorization: Bearer {jwt_of(api(slow_user))}\r\n\r\n".encode())
        assert slow.recv(15).startswith(b"HTTP/1.1 200")
        fast = SseReader(f"{server.url}/v1/timeline/home/stream", jwt_of(api(fast_user)))
        tweet_id = tweet_services.tweet_create(author=author, content="x" * 280).id
        fast.wait(lambda s: s.of("tweet"))
        # Many deliveries of it (each a distinct range holding both readers, so none is a repeat):
        # megabytes of Mastodon Statuses, more than the kernel's and the server's buffers hold.
        count = 4000
        for n in range(count):
            redis.spublish(events.channel_for(author.id),
                           orjson.dumps([events.TWEET, tweet_id, author.id, 0, fast_user.id + slow_user.id + n]))
        fast.wait(lambda s: len(s.of("tweet")) == count + 1, 60, what="every event at the reading client")
        # The slow one was cut off: what was buffered for it arrives, then the end of the connection.
        slow.settimeout(10)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # read the rest quickly
        received = b""
        try:
            while chunk := slow.recv(1 << 20):
                received += chunk
        except TimeoutError:
            raise AssertionError(f"still open after {len(received)} bytes, "
                                 f"{received.count(b'event: update')} events:\n{server.output()}") from None
        assert 0 < received.count(b"event: update") < count
        fast.close()
    finally:
        server.stop()


@on_one_redis_server
def test_streams_close_cleanly_when_redis_restarts_and_a_v1_client_resumes_without_a_gap(tmp_path, make_user, api):
    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        tool_missing("redis-server is not installed")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]

    def start_redis() -> subprocess.Popen:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: _pings(port), 10, what="the test's Redis")
        return proc

    private = start_redis()
    server = start_stream_server(tmp_path, {"REDIS_URL": f"redis://127.0.0.1:{port}/0"},
                                 redis=redis_py.Redis(port=port))
    try:
        reader, author = make_user(username="reader"), make_user(username="author")
        assert api(reader).post(f"/v1/users/{author.id}/follow").status_code == 200
        publisher = redis_py.Redis(port=port)

        def deliver(tweet_id: int) -> None:  # as the fan-out announces a delivery, on the stream's Redis
            message = [events.TWEET, tweet_id, author.id, 0, None]
            publisher.spublish(events.channel_for(author.id), orjson.dumps(message))

        url, token = f"{server.url}/v1/timeline/home/stream", jwt_of(api(reader))
        stream = SseReader(url, token)
        first = tweet_services.tweet_create(author=author, content="before").id
        deliver(first)
        stream.wait(lambda s: s.of("tweet"))
        assert stream.last_event_id == str(first)

        private.terminate()
        private.wait()
        assert stream.ended.wait(10), "the stream was not closed when Redis went"
        assert stream.response.raw.closed or stream.ended.is_set()
        missed = tweet_services.tweet_create(author=author, content="while Redis was away").id
        assert requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 503

        private = start_redis()  # empty: every timeline is rebuilt from PostgreSQL
        wait_for(lambda: requests.get(url, headers={"Authorization": f"Bearer {token}"}, stream=True,
                                      timeout=5).status_code == 200, 20, what="the stream process to listen again")
        resumed = SseReader(url, token, last_event_id=stream.last_event_id)
        resumed.wait(lambda s: s.of("tweet"))
        live = tweet_services.tweet_create(author=author, content="live").id
        deliver(live)
        resumed.wait(lambda s: len(s.of("tweet")) >= 2)
        assert [int(e.id) for e in resumed.of("tweet")] == [missed, live]
        resumed.close()
    finally:
        server.stop()
        private.terminate()
        private.wait()


def _pings(port: int) -> bool:
    try:
        return redis_py.Redis(port=port, socket_connect_timeout=0.5).ping()
    except redis_py.ConnectionError:
        return False


def test_a_stream_process_whose_port_is_taken_exits(tmp_path):
    """It must die for its supervisor to see it (it used to hang in its shutdown, its listener's
    cancellation swallowed inside redis-py)."""
    import os
    import sys

    from .conftest import ROOT

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "config.asgi:stream_application", "--host", "127.0.0.1",
                             "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        assert proc.wait(timeout=30) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        taken.close()
