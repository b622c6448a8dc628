"""Snowflake ids: 41 bits of milliseconds since ``EPOCH_MS``, 10 bits of worker id, 12 of sequence.

Every process that mints ids holds a worker id leased from PostgreSQL (one
``SnowflakeLease`` row per worker id, taken only once its ``expires_at`` has
passed by PostgreSQL's clock), so two processes can never mint in the same id
space at once, and posting needs no store besides the one it writes the tweet
to: a Redis outage of any length leaves posting alone. The lease is renewed
at least every ``RENEW_EVERY_MS`` while minting (twice as often from a
background thread in web workers, ``keep_leased``, so a post rarely waits for
it), on a connection of the generator's own in autocommit, so no request's
transaction, committed or rolled back, touches a lease.

Per process the ids strictly increase: the clock is read as ``max(now, last)``,
so a clock that steps back keeps minting from the last millisecond (borrowing
the next one when the sequence runs out) instead of re-minting ids. Each worker
id records a high-water mark: a holder never mints in a millisecond more than
``RENEW_EVERY_MS`` past the mark its last renewal recorded (a clock that jumps
ahead is recorded first), and the next holder starts a whole lease past the
mark, even if its clock is behind. When a renewal fails (PostgreSQL down or
slow), the process keeps minting until ``EXPIRY_MARGIN_MS`` before the lease's
expiry, timed on the monotonic clock from when the last successful renewal
was sent, and never further than the lease less that margin past the mark. A forked child (Celery prefork, gunicorn)
notices the pid change and leases its own id on a connection of its own.
"""
import logging
import os
import secrets
import threading
import time
from datetime import UTC, datetime

import psycopg
from django.conf import settings
from django.db import connections

from core.exceptions import ApplicationError
from core.postgres.base import bounded

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
WORKER_ID_BITS = 10
SEQUENCE_BITS = 12
MAX_WORKER_ID = (1 << WORKER_ID_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
TIMESTAMP_SHIFT = WORKER_ID_BITS + SEQUENCE_BITS

# Renew well inside the lease, and never mint further than this past the
# high-water mark the last renewal recorded.
RENEW_EVERY_MS = 5_000
# Without a renewal, stop minting this long before the lease runs out (clock
# rates between this process and PostgreSQL, a renewal in flight).
EXPIRY_MARGIN_MS = 5_000
# A lease statement waits at most this long (a PostgreSQL that is slow or locked).
STATEMENT_TIMEOUT_MS = 2_000

_TABLE = "tweets_snowflakelease"  # tweets.models.SnowflakeLease

_FILL = f"""
INSERT INTO {_TABLE} (worker_id, holder, expires_at, high_water_ms)
SELECT g, '', '-infinity', 0 FROM generate_series(0, {MAX_WORKER_ID}) AS g ON CONFLICT DO NOTHING
"""

# The free worker id whose lease ran out longest ago (its mark is the oldest);
# SKIP LOCKED sends processes acquiring at once to different rows, each in one
# round trip. The new holder starts past what the last one could have minted.
_ACQUIRE = f"""
UPDATE {_TABLE} AS l
SET holder = %(holder)s, expires_at = clock_timestamp() + %(lease_ms)s * interval '1 millisecond',
    high_water_ms = GREATEST(l.high_water_ms + %(slack_ms)s + 1, %(mark)s)
FROM (SELECT worker_id FROM {_TABLE} WHERE expires_at < clock_timestamp()
      ORDER BY expires_at LIMIT 1 FOR UPDATE SKIP LOCKED) AS free
WHERE l.worker_id = free.worker_id
RETURNING l.worker_id, l.high_water_ms
"""

# Still this holder's (an expired lease nobody took is still safe to keep).
_RENEW = f"""
UPDATE {_TABLE}
SET expires_at = clock_timestamp() + %(lease_ms)s * interval '1 millisecond',
    high_water_ms = GREATEST(high_water_ms, %(mark)s)
WHERE worker_id = %(worker_id)s AND holder = %(holder)s
RETURNING worker_id
"""

_UNREACHABLE = (psycopg.OperationalError, psycopg.InterfaceError)

logger = logging.getLogger(__name__)


def _lease_ms() -> int:
    return settings.SNOWFLAKE_LEASE_SECONDS * 1000


class LeaseUnavailable(ApplicationError):
    """No worker id can be leased or vouched for (every one leased, or PostgreSQL unreachable
    past what the held lease covers): refuse to mint rather than risk a duplicate."""

    status_code = 503


def timestamp_ms_of(snowflake_id: int) -> int:
    return (snowflake_id >> TIMESTAMP_SHIFT) + EPOCH_MS


def datetime_of(snowflake_id: int) -> datetime:
    return datetime.fromtimestamp(timestamp_ms_of(snowflake_id) / 1000, tz=UTC)


def lowest_id_at(ms: int) -> int:
    """The smallest id minted at unix millisecond ``ms`` (for id-range queries by time)."""
    return max(ms - EPOCH_MS, 0) << TIMESTAMP_SHIFT


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class PostgresLeases:
    """The lease table, on a connection of its own (autocommit, ``STATEMENT_TIMEOUT_MS``),
    opened with the default database's settings when first needed and again after a failure.
    The caller serialises its calls. Raises ``psycopg.OperationalError`` or ``InterfaceError``
    when PostgreSQL cannot be reached."""

    def __init__(self, alias: str = "default"):
        self.alias = alias
        self._conn: psycopg.Connection | None = None
        self._pid = os.getpid()

    def _connection(self) -> psycopg.Connection:
        if self._pid != os.getpid():
            # Forked: the socket is the parent's. Dropped, not closed (closing would end the
            # parent's session; psycopg does not close a connection of another process when
            # collecting it).
            self._conn, self._pid = None, os.getpid()
        if self._conn is None or self._conn.closed:
            params = connections[self.alias].get_connection_params()
            for django_only in ("cursor_factory", "context"):
                params.pop(django_only, None)
            params.setdefault("connect_timeout", 2)
            # Bounded as Django's connections are: a frozen server (or a partition) must not hold a
            # renewal, and the generator's lock with it, for longer than DATABASE_QUERY_TIMEOUT.
            conn = bounded(psycopg.connect(**params, autocommit=True))
            conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
            self._conn = conn
        return self._conn

    def _run(self, sql: str, params: dict) -> tuple | None:
        try:
            cursor = self._connection().execute(sql, params)
            return cursor.fetchone() if cursor.description else None
        except _UNREACHABLE:
            self.close()
            raise

    def acquire(self, *, holder: str, mark: int, slack_ms: int) -> tuple[int, int] | None:
        """Take the free worker id whose lease ran out longest ago: (it, the millisecond to start
        past), or None when every one is leased."""
        params = {"holder": holder, "lease_ms": _lease_ms(), "slack_ms": slack_ms, "mark": mark}
        row = self._run(_ACQUIRE, params)
        if row is None:  # the rows may be missing (a database emptied since it was migrated)
            self._run(_FILL, {})
            row = self._run(_ACQUIRE, params)
        return (row[0], row[1]) if row else None

    def renew(self, *, worker_id: int, holder: str, mark: int) -> bool:
        """Extend the lease and raise its mark to ``mark``; False when it is no longer ``holder``'s."""
        return self._run(_RENEW, {"lease_ms": _lease_ms(), "mark": mark, "worker_id": worker_id,
                                  "holder": holder}) is not None

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():  # never the parent's (above)
            self._conn.close()
        self._conn = None


class SnowflakeGenerator:
    def __init__(self, *, clock=_now_ms, monotonic=_monotonic_ms, leases: PostgresLeases | None = None):
        self._clock = clock
        self._monotonic = monotonic  # times lease renewals: immune to clock steps
        self.leases = leases or PostgresLeases()
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._worker_id: int | None = None
        self._token = ""
        self._renewed_at = 0  # when the last successful renewal or acquisition was sent
        self._recorded_ms = 0  # the high-water mark it stored
        self._last_ms = 0
        self._sequence = 0
        self._stop: threading.Event | None = None

    def _acquire(self, mark: int) -> None:
        token = f"{os.getpid()}:{secrets.token_hex(8)}"
        sent_at = self._monotonic()
        # The previous holder minted at most a lease past its last mark (less the margin).
        taken = self.leases.acquire(holder=token, mark=mark, slack_ms=max(RENEW_EVERY_MS, _lease_ms()))
        if taken is None:
            raise LeaseUnavailable("Every Snowflake worker id is leased; try again shortly.")
        self._worker_id, start = taken
        self._token, self._pid = token, os.getpid()
        self._renewed_at, self._recorded_ms = sent_at, start
        # Mint past the start (the mark, or past the previous holder's ids); a new
        # worker id may sort below the old one, so start a fresh millisecond too.
        self._last_ms, self._sequence = max(self._last_ms, start), MAX_SEQUENCE

    def _ensure_lease(self, ms: int, *, renew_after: int = RENEW_EVERY_MS) -> bool:
        """Hold a lease that covers minting in millisecond ``ms``; True if a new one was taken
        (the millisecond to mint in must then be chosen again)."""
        held = self._pid == os.getpid()
        age = self._monotonic() - self._renewed_at
        if held and age < renew_after and ms < self._recorded_ms + RENEW_EVERY_MS:
            return False
        sent_at = self._monotonic()
        try:
            if held:
                assert self._worker_id is not None  # held: this process leased one
                if self.leases.renew(worker_id=self._worker_id, holder=self._token, mark=ms):
                    self._renewed_at, self._recorded_ms = sent_at, ms
                    return False
            self._acquire(max(self._last_ms, ms))
            return True
        except _UNREACHABLE as error:
            # PostgreSQL is unreachable: a held lease is still ours until it expires.
            limit = _lease_ms() - EXPIRY_MARGIN_MS
            if held and age < limit and ms < self._recorded_ms + limit:
                return False
            raise LeaseUnavailable("No Snowflake worker id can be leased now; try again shortly.") from error

    def keep_leased(self) -> threading.Event:
        """Lease now, and renew from a daemon thread of this process before a post would have to
        (a web worker: posts then seldom wait for a renewal, and one that never posted holds a
        lease). Setting the returned event stops the renewals."""
        stop = self._stop = threading.Event()

        def renew_until_stopped():
            while not stop.is_set():
                with self._lock:
                    try:
                        self._ensure_lease(max(self._last_ms, self._clock()), renew_after=RENEW_EVERY_MS // 2)
                    except Exception as error:  # noqa: BLE001 - PostgreSQL down: tried again next round, or when minting
                        logger.warning("could not renew the Snowflake lease: %s", error)
                stop.wait(RENEW_EVERY_MS / 4000)

        threading.Thread(target=renew_until_stopped, name="snowflake-lease", daemon=True).start()
        return stop

    def close(self) -> None:
        """Stop renewing and close the lease connection (the lease runs out by itself)."""
        if self._stop is not None:
            self._stop.set()
        with self._lock:
            self.leases.close()

    @property
    def worker_id(self) -> int | None:
        return self._worker_id if self._pid == os.getpid() else None

    def _slot(self, now: int) -> tuple[int, int]:
        """The millisecond and sequence the next id takes."""
        if now > self._last_ms:
            return now, 0
        if self._sequence < MAX_SEQUENCE:
            return self._last_ms, self._sequence + 1
        # Sequence exhausted within this millisecond (or the clock went back):
        # borrow the next millisecond rather than wait or repeat.
        return self._last_ms + 1, 0

    def next_id(self, *, after: int = 0) -> int:
        """The next id of this process; also greater than ``after`` when given."""
        with self._lock:
            now = self._clock()
            if after and timestamp_ms_of(after) >= self._last_ms:
                # Skip ahead to ``after``'s millisecond (a lease covering it is checked below).
                self._last_ms, self._sequence = timestamp_ms_of(after), MAX_SEQUENCE
            ms, sequence = self._slot(now)
            if self._ensure_lease(ms):
                ms, sequence = self._slot(now)  # past the new lease's start, covered by it
            self._last_ms, self._sequence = ms, sequence
            assert self._worker_id is not None  # _ensure_lease returned: this process holds one
            return ((ms - EPOCH_MS) << TIMESTAMP_SHIFT) | (self._worker_id << SEQUENCE_BITS) | sequence


_generator = SnowflakeGenerator()


def next_id(*, after: int = 0) -> int:
    return _generator.next_id(after=after)


def keep_leased() -> threading.Event:
    """Hold this process's lease from now on (see ``SnowflakeGenerator.keep_leased``)."""
    return _generator.keep_leased()
