"""The stream process, as the Procfile runs it (uvicorn, ``config.asgi:stream_application``),
on a spare port, against this test's database and Redis key prefix."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection
from redis.cluster import RedisCluster

from tests.helpers import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


class StreamServer:
    def __init__(self, port: int, proc: subprocess.Popen, log: Path):
        self.port, self.proc, self.log = port, proc, log
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_stream_server(tmp_path: Path, env: dict[str, str] | None = None, redis=None) -> StreamServer:
    """A stream process on a spare port, ready once it listens to the channels (on ``redis``,
    default the product's own client: the one the stream process uses unless ``env`` says)."""
    port = free_port()
    log = tmp_path / f"stream-{port}.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))} | {
        "DJANGO_SETTINGS_MODULE": "tests.streaming.settings",
        "STREAM_TEST_PREFIX": settings.REDIS_KEY_PREFIX,
        "STREAM_TEST_CACHE_PREFIX": settings.CACHES["default"].get("KEY_PREFIX", ""),
        "STREAM_TEST_DATABASE": connection.settings_dict["NAME"],
        "STREAM_RECHECK_SECONDS": "1",
        "STREAM_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    } | (env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:stream_application", "--host", "127.0.0.1",
         "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--ws", "websockets-sansio",
         "--log-level", "warning", "--timeout-graceful-shutdown", "2"],
        cwd=ROOT, env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT)
    server = StreamServer(port, proc, log)

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the stream process exited:\n{server.output()}")
        try:
            # Ready once it listens to the channels: a stream opened before would be refused (503).
            return requests.get(f"{server.url}/healthz", timeout=1).ok and _listening(redis)
        except requests.ConnectionError:
            return False
    try:
        wait_for(ready, 30, what="the stream process", details=server.output)
    except BaseException:
        server.stop()  # not left running when it never became ready
        raise
    return server


def _listening(redis) -> bool:
    from core.redis import connection as redis_connection
    from streaming import events

    client = redis or redis_connection()
    if isinstance(client, RedisCluster):  # each channel counts its subscribers on its own slot's master
        return all(client.pubsub_shardnumsub(channel, target_nodes=client.get_node_from_key(channel))[0][1] > 0
                   for channel in events.channels())
    return all(count > 0 for _, count in client.pubsub_shardnumsub(*events.channels()))


@pytest.fixture
def stream_server(tmp_path, settings):
    settings.STREAMING_API_URL = ""  # the instance documents name it: set by the tests that need it
    server = start_stream_server(tmp_path)
    try:
        yield server
    finally:
        server.stop()
