"""Snowflake ids: layout, per-process order, clock steps, and distinct leased worker ids."""
import subprocess
import sys
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.helpers import on_one_redis_server, wait_for
from tweets import snowflake
from tweets.snowflake import SnowflakeGenerator


class FakeClock:
    def __init__(self, ms: int):
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def test_layout_round_trips_time_and_worker_id():
    gen = SnowflakeGenerator()
    tweet_id = gen.next_id()
    assert 0 < tweet_id < 1 << 63
    assert (tweet_id >> 12) & 0x3FF == gen.worker_id
    assert abs(snowflake.timestamp_ms_of(tweet_id) - snowflake._now_ms()) < 5_000


def test_ids_strictly_increase_within_one_millisecond_and_past_the_sequence():
    gen = SnowflakeGenerator(clock=FakeClock(snowflake.EPOCH_MS + 10_000_000))
    ids = [gen.next_id() for _ in range(10_000)]  # more than 4096 in "one" millisecond
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_a_clock_that_steps_back_never_repeats_an_id():
    clock = FakeClock(snowflake.EPOCH_MS + 50_000_000)
    gen = SnowflakeGenerator(clock=clock, monotonic=clock)
    before = [gen.next_id() for _ in range(100)]
    clock.ms -= 3_000  # NTP steps the clock back three seconds
    after = [gen.next_id() for _ in range(100)]
    assert min(after) > max(before)
    assert len(set(before + after)) == 200


def test_two_generators_hold_distinct_worker_ids():
    a, b = SnowflakeGenerator(), SnowflakeGenerator()
    a.next_id()
    b.next_id()
    assert a.worker_id != b.worker_id


def test_a_lost_lease_is_replaced_and_ids_keep_increasing(redis, settings):
    clock = FakeClock(snowflake._now_ms())
    gen = SnowflakeGenerator(clock=clock, monotonic=clock)
    first = gen.next_id()
    old_worker = gen.worker_id
    lease_key, _ = gen._keys(old_worker)
    redis.set(lease_key, "someone-else")  # the lease expired and another process took the id
    clock.ms += snowflake.RENEW_EVERY_MS + 1
    second = gen.next_id()
    assert gen.worker_id != old_worker
    assert second > first


def test_a_new_holder_of_a_worker_id_starts_past_its_previous_holder(redis, monkeypatch):
    clock = FakeClock(snowflake._now_ms())
    old = SnowflakeGenerator(clock=clock, monotonic=clock)
    old.next_id()
    clock.ms += snowflake.RENEW_EVERY_MS + 1
    minted = old.next_id()  # renews the lease, recording the high-water mark
    lease_key, _ = old._keys(old.worker_id)
    redis.delete(lease_key)  # the old process died and its lease expired
    # The next holder of the same worker id has a clock a minute behind.
    monkeypatch.setattr(snowflake.secrets, "randbelow", lambda n: old.worker_id)
    new = SnowflakeGenerator(clock=FakeClock(clock.ms - 60_000))
    fresh = new.next_id()
    assert new.worker_id == old.worker_id
    assert fresh > minted


MINT_SCRIPT = """
import os, sys, django
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
django.setup()
from django.conf import settings
settings.REDIS_KEY_PREFIX = sys.argv[1]
from tweets.snowflake import next_id
sys.stdin.readline()  # start together
print("\\n".join(str(next_id()) for _ in range(2000)))
"""


@pytest.mark.slow
def test_processes_started_together_never_mint_the_same_id(redis_namespace):
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen([sys.executable, "-c", MINT_SCRIPT, redis_namespace], cwd=root,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    outputs = [p.communicate("go\n", timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    ids = [int(x) for out in outputs for x in out]
    assert len(ids) == 6 * 2000
    assert len(set(ids)) == len(ids)
    for out in outputs:
        minted = [int(x) for x in out]
        assert minted == sorted(minted)
    assert len({(i >> 12) & 0x3FF for i in ids}) == 6


@on_one_redis_server
def test_a_held_lease_keeps_minting_through_a_redis_outage_until_its_expiry(redis_down, settings):
    redis_down(False)
    clock = FakeClock(snowflake._now_ms())
    gen = SnowflakeGenerator(clock=clock, monotonic=clock)
    minted = [gen.next_id()]
    renewed_at = clock.ms
    redis_down(True)
    usable = settings.SNOWFLAKE_LEASE_SECONDS * 1000 - snowflake.EXPIRY_MARGIN_MS
    for offset in (snowflake.RENEW_EVERY_MS + 1, usable // 2, usable - 1):
        clock.ms = renewed_at + offset
        minted.append(gen.next_id())  # each try to renew fails; the lease still holds
    clock.ms = renewed_at + usable
    with pytest.raises(RedisConnectionError):
        gen.next_id()  # past what the lease vouches for: refuse rather than risk a repeat
    assert minted == sorted(set(minted))

    fresh = SnowflakeGenerator(clock=clock, monotonic=clock)
    with pytest.raises(RedisConnectionError):
        fresh.next_id()  # never held a lease: nothing to mint with


def test_a_process_that_keeps_its_lease_mints_through_a_redis_outage_without_having_minted_before(redis_down):
    redis_down(False)
    gen = SnowflakeGenerator()
    stop = gen.keep_leased()  # as a web worker does when it starts
    try:
        wait_for(lambda: gen.worker_id is not None, 10, what="the lease")
        redis_down(True)
        first = gen.next_id()
        assert gen.next_id() > first
    finally:
        stop.set()
