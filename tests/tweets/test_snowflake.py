"""Snowflake ids: layout, per-process order, clock steps, and distinct worker ids leased from PostgreSQL."""
import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.helpers import wait_for
from tweets import snowflake
from tweets.snowflake import LeaseUnavailable, PostgresLeases, SnowflakeGenerator

pytestmark = pytest.mark.django_db


class FakeClock:
    def __init__(self, ms: int):
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


class Unplugged(PostgresLeases):
    """The lease table behind a connection that can be cut (PostgreSQL unreachable from this process)."""

    down = False

    def _connection(self):
        if self.down:
            self.close()
            raise psycopg.OperationalError("connection refused (the test cut PostgreSQL off)")
        return super()._connection()


@pytest.fixture
def leases_db(db):
    """A connection of the test's own to the lease table, outside the test's transaction (as the leases are)."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as conn:
        yield conn


@pytest.fixture(autouse=True)
def leases_freed_after():
    """After each test, every worker id free again, its mark kept: the leases live outside the test's
    transaction, so what a test took or marked taken for good would otherwise stay taken for the tests
    that follow (the property test marks all but two, the exhaustion test all of them)."""
    yield
    if not connection.settings_dict["NAME"].startswith("test"):
        return  # no test database was made (no test asked for one): nothing of the tests' to free
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(snowflake._FILL)
        conn.execute("UPDATE tweets_snowflakelease SET holder = '', expires_at = '-infinity'")


@pytest.fixture
def generators():
    """``new(**kwargs)``: a SnowflakeGenerator, closed after the test (its lease connection with it)."""
    made = []

    def new(**kwargs) -> SnowflakeGenerator:
        made.append(SnowflakeGenerator(**kwargs))
        return made[-1]

    yield new
    for gen in made:
        gen.close()


def holder_of(leases_db, worker_id: int) -> str:
    return leases_db.execute("SELECT holder FROM tweets_snowflakelease WHERE worker_id = %s",
                             (worker_id,)).fetchone()[0]


def test_layout_round_trips_time_and_worker_id(generators):
    gen = generators()
    tweet_id = gen.next_id()
    assert 0 < tweet_id < 1 << 63
    assert (tweet_id >> 12) & 0x3FF == gen.worker_id
    assert abs(snowflake.timestamp_ms_of(tweet_id) - snowflake._now_ms()) < 5_000


def test_ids_strictly_increase_within_one_millisecond_and_past_the_sequence(generators):
    gen = generators(clock=FakeClock(snowflake._now_ms()))
    ids = [gen.next_id() for _ in range(10_000)]  # more than 4096 in "one" millisecond
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_a_clock_that_steps_back_never_repeats_an_id(generators):
    clock = FakeClock(snowflake._now_ms())
    gen = generators(clock=clock, monotonic=clock)
    before = [gen.next_id() for _ in range(100)]
    clock.ms -= 3_000  # NTP steps the clock back three seconds
    after = [gen.next_id() for _ in range(100)]
    assert min(after) > max(before)
    assert len(set(before + after)) == 200


def test_two_generators_hold_distinct_worker_ids(generators, leases_db):
    a, b = generators(), generators()
    a.next_id()
    b.next_id()
    assert a.worker_id != b.worker_id
    assert holder_of(leases_db, a.worker_id) != holder_of(leases_db, b.worker_id)


def test_the_lease_is_recorded_outside_the_posts_transaction(generators, leases_db):
    from django.db import transaction

    gen = generators()
    with pytest.raises(RuntimeError), transaction.atomic():
        gen.next_id()  # minted inside a post's transaction, which then rolls back
        raise RuntimeError("the post failed")
    assert holder_of(leases_db, gen.worker_id) == gen._token  # the lease stands


def test_a_lost_lease_is_replaced_and_ids_keep_increasing(generators, leases_db):
    clock = FakeClock(snowflake._now_ms())
    gen = generators(clock=clock, monotonic=clock)
    first = gen.next_id()
    old_worker = gen.worker_id
    # The lease expired and another process took the id.
    leases_db.execute("UPDATE tweets_snowflakelease SET holder = 'someone-else', expires_at = 'infinity' "
                      "WHERE worker_id = %s", (old_worker,))
    clock.ms += snowflake.RENEW_EVERY_MS + 1
    second = gen.next_id()
    assert gen.worker_id != old_worker
    assert second > first


def test_a_new_holder_of_a_worker_id_starts_past_its_previous_holder(generators, leases_db):
    clock = FakeClock(snowflake._now_ms())
    old = generators(clock=clock, monotonic=clock)
    old.next_id()
    clock.ms += snowflake.RENEW_EVERY_MS + 1
    minted = old.next_id()  # renews the lease, recording the high-water mark
    # The old process died and its lease expired: its worker id is the only free one.
    leases_db.execute("UPDATE tweets_snowflakelease SET expires_at = CASE WHEN worker_id = %s "
                      "THEN '-infinity'::timestamptz ELSE 'infinity' END", (old.worker_id,))
    try:
        # The next holder of the same worker id has a clock a minute behind.
        new = generators(clock=FakeClock(clock.ms - 60_000))
        fresh = new.next_id()
    finally:
        leases_db.execute("UPDATE tweets_snowflakelease SET expires_at = '-infinity' WHERE expires_at = 'infinity'")
    assert new.worker_id == old.worker_id
    assert fresh > minted


def test_a_clock_jumping_ahead_is_recorded_before_it_is_minted_in(generators, leases_db):
    clock = FakeClock(snowflake._now_ms())
    gen = generators(clock=clock, monotonic=lambda: 0)  # no time passes for the lease
    gen.next_id()
    clock.ms += 3_600_000  # the clock steps an hour ahead
    ahead = gen.next_id()
    mark = leases_db.execute("SELECT high_water_ms FROM tweets_snowflakelease WHERE worker_id = %s",
                             (gen.worker_id,)).fetchone()[0]
    # The next holder starts past the mark, so past the ids minted an hour ahead.
    assert mark >= snowflake.timestamp_ms_of(ahead)


def test_every_worker_id_leased_is_a_503_not_a_duplicate(generators, leases_db):
    leases_db.execute("UPDATE tweets_snowflakelease SET expires_at = 'infinity'")
    try:
        with pytest.raises(LeaseUnavailable) as refused:
            generators().next_id()
    finally:
        leases_db.execute("UPDATE tweets_snowflakelease SET expires_at = '-infinity' WHERE expires_at = 'infinity'")
    assert refused.value.status_code == 503


def test_missing_lease_rows_are_inserted_again(generators, leases_db):
    leases_db.execute("DELETE FROM tweets_snowflakelease")  # a database emptied since it was migrated
    gen = generators()
    gen.next_id()
    assert leases_db.execute("SELECT count(*) FROM tweets_snowflakelease").fetchone()[0] == 1024
    assert holder_of(leases_db, gen.worker_id) == gen._token


def test_a_forked_child_leases_its_own_worker_id_and_leaves_the_parents_session_alone(generators):
    gen = generators()
    gen.next_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: lets go of what it inherited, then mints with a lease of its own
        try:
            gen.close()
            gc.collect()
            os.write(write, str(gen.next_id() >> 12 & 0x3FF).encode())
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    child_worker_id = int(os.read(read, 16))
    os.close(read)
    os.close(write)
    assert child_worker_id != gen.worker_id
    assert gen.leases._conn is not None and gen.leases._conn.execute("SELECT 1").fetchone() == (1,)


MINT_SCRIPT = """
import os, sys, django
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
django.setup()
from tweets.snowflake import next_id
sys.stdin.readline()  # start together
print("\\n".join(str(next_id()) for _ in range(2000)))
"""


@pytest.mark.slow
def test_processes_started_together_never_mint_the_same_id(db):
    root = Path(__file__).resolve().parents[2]
    params = connection.settings_dict
    database_url = f"postgres://{params['USER']}@{params['HOST']}:{params['PORT']}/{params['NAME']}"
    procs = [
        subprocess.Popen([sys.executable, "-c", MINT_SCRIPT], cwd=root, env=os.environ | {"DATABASE_URL": database_url},
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


def test_a_held_lease_keeps_minting_through_a_lease_store_outage_until_its_expiry(generators, settings):
    clock = FakeClock(snowflake._now_ms())
    leases = Unplugged()
    gen = generators(clock=clock, monotonic=clock, leases=leases)
    minted = [gen.next_id()]
    renewed_at = clock.ms
    leases.down = True
    usable = settings.SNOWFLAKE_LEASE_SECONDS * 1000 - snowflake.EXPIRY_MARGIN_MS
    for offset in (snowflake.RENEW_EVERY_MS + 1, usable // 2, usable - 1):
        clock.ms = renewed_at + offset
        minted.append(gen.next_id())  # each try to renew fails; the lease still holds
    clock.ms = renewed_at + usable
    with pytest.raises(LeaseUnavailable):
        gen.next_id()  # past what the lease vouches for: refuse rather than risk a repeat
    assert minted == sorted(set(minted))
    leases.down = False
    assert gen.next_id() > minted[-1]  # PostgreSQL is back: renewed (or leased again), minting again


def test_a_process_that_never_held_a_lease_mints_with_redis_down(redis_down, generators):
    redis_down(True)
    gen = generators()
    first = gen.next_id()
    assert gen.next_id() > first and gen.worker_id is not None


def test_a_process_keeps_minting_through_a_redis_outage_longer_than_its_lease(redis_down, generators, settings):
    settings.SNOWFLAKE_LEASE_SECONDS = 1  # below the allowed minimum, only to outlast it quickly
    redis_down(True)
    gen = generators()
    stop = gen.keep_leased()  # as a web worker does when it starts
    wait_for(lambda: gen.worker_id is not None, 10, what="the lease")
    minted, deadline = [], time.monotonic() + 3  # three leases long
    while time.monotonic() < deadline:
        minted.append(gen.next_id())
        time.sleep(0.05)
    stop.set()
    assert minted == sorted(set(minted)) and len(minted) > 20


class Process:
    """A minting process in the property test: its generator, its wall clock (the test's, plus an
    offset of its own that steps), its monotonic clock (the test's), its lease store."""

    def __init__(self, world: "World"):
        self.world, self.offset = world, 0
        self.leases = Unplugged()
        self.gen = SnowflakeGenerator(clock=lambda: world.wall() + self.offset, monotonic=world.monotonic,
                                      leases=self.leases)
        self.minted: list[int] = []


class World:
    """Time in the property test. The wall clocks stand still but for ``advance`` (so processes
    mint in the same milliseconds, where a repeat would show). The monotonic clock is real time
    plus what ``advance`` added, as PostgreSQL's clock is real time and advancing moves every
    lease's expiry back by as much."""

    def __init__(self, leases_db):
        self.db, self.added = leases_db, 0
        self.started, self.start_ms = time.monotonic_ns() // 1_000_000, snowflake._now_ms()

    def monotonic(self) -> int:
        return time.monotonic_ns() // 1_000_000 - self.started + self.added

    def wall(self) -> int:
        return self.start_ms + self.added

    def advance(self, ms: int) -> None:
        self.added += ms
        self.db.execute("UPDATE tweets_snowflakelease SET expires_at = expires_at - %s * interval '1 millisecond'",
                        (ms,))


FEW_WORKER_IDS = 2  # the others leased elsewhere for good, so holders follow each other on these
LEASE_S = 15

operations = st.lists(st.one_of(
    st.tuples(st.just("mint"), st.integers(0, 3), st.integers(1, 50)),
    st.tuples(st.just("advance"), st.sampled_from([1, 1_000, 4_999, 5_001, 9_999, 10_001, 15_500, 30_000])),
    st.tuples(st.just("step"), st.integers(0, 3), st.sampled_from([-3_600_000, -7_000, -1, 1, 14_000, 30_000])),
    st.tuples(st.just("outage"), st.integers(0, 3), st.booleans()),
    st.tuples(st.just("restart"), st.integers(0, 3)),
), min_size=1, max_size=40)


@hypothesis_settings(max_examples=150, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(operations)
# A holder cut off from PostgreSQL mints past its mark; the next holder, whose clock is behind, starts past that.
@example([("mint", 0, 1), ("mint", 1, 1), ("outage", 0, True), ("advance", 9_000), ("mint", 0, 1), ("advance", 1),
          ("mint", 0, 1), ("advance", 6_999), ("mint", 1, 1), ("step", 2, -7_000), ("mint", 2, 5)])
# A holder cut off from PostgreSQL stops minting before its lease can pass to another.
@example([("mint", 0, 1), ("mint", 1, 1), ("outage", 0, True), ("advance", 15_500), ("mint", 1, 1), ("mint", 2, 1),
          ("mint", 0, 1)])
# A clock that jumps ahead is recorded before it is minted in, so the next holder starts past it.
@example([("mint", 0, 1), ("mint", 1, 1), ("step", 0, 30_000), ("mint", 0, 1), ("advance", 1), ("mint", 0, 1),
          ("advance", 16_000), ("mint", 1, 1), ("step", 2, 13_999), ("mint", 2, 5)])
def test_no_id_twice_ids_increase_and_one_live_holder_per_worker_id(leases_db, settings, steps):
    settings.SNOWFLAKE_LEASE_SECONDS = LEASE_S
    leases_db.execute("DELETE FROM tweets_snowflakelease")
    leases_db.execute("INSERT INTO tweets_snowflakelease (worker_id, holder, expires_at, high_water_ms) SELECT g, "
                      "'', CASE WHEN g < %s THEN '-infinity'::timestamptz ELSE 'infinity' END, 0 "
                      "FROM generate_series(0, 1023) AS g", (FEW_WORKER_IDS,))
    world = World(leases_db)
    processes = [Process(world) for _ in range(4)]
    every: set[int] = set()
    try:
        for op, *args in steps:
            if op == "advance":
                world.advance(args[0])
            elif op == "step":
                processes[args[0]].offset += args[1]
            elif op == "outage":
                processes[args[0]].leases.down = args[1]
            elif op == "restart":  # the process dies (its lease runs out by itself) and a new one starts
                processes[args[0]].gen.close()
                processes[args[0]] = Process(world)
            else:
                process = processes[args[0]]
                for _ in range(args[1]):
                    try:
                        tweet_id = process.gen.next_id()
                    except LeaseUnavailable:
                        break  # every worker id leased, or PostgreSQL unreachable past the lease: refused
                    assert tweet_id not in every, "an id minted twice"
                    assert not process.minted or tweet_id > process.minted[-1], "ids of a process out of order"
                    assert holder_of(leases_db, process.gen.worker_id) == process.gen._token, \
                        "minted with a worker id PostgreSQL says another process holds"
                    every.add(tweet_id)
                    process.minted.append(tweet_id)
    finally:
        for process in processes:
            process.gen.close()
