"""Which PostgreSQL server a read goes to: the primary, or a streaming replica when one is set.

Everything goes to the primary (``default``) unless a caller asks for
``replica_or_primary()`` by name, for a read that tolerates some lag; the
router below only keeps migrations off the replica. ``replica_or_primary``
answers ``replica`` only while the replica answers and its replay lags less
than ``DATABASE_REPLICA_MAX_LAG_SECONDS`` (asked at most every
``REPLICA_CHECK_SECONDS`` per process), otherwise ``default``. With
``caught_up=True`` the replica must also have replayed everything the primary
had committed when the call began (its WAL position, compared with the
replica's replay position), which makes the read as fresh as one on the primary:
for reads that must see a write just made, by anyone. docs/scaling.md has why
each routed read is safe.

When the primary cannot be reached, the replica is the freshest copy there
is: lag-tolerant and caught-up reads then go to it whatever its lag, and even
once it has been promoted (a promoted replica is otherwise not used: it no
longer follows the primary). Writes stay on the primary, and fail.
"""
import logging
import threading
import time

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connections

logger = logging.getLogger(__name__)

PRIMARY = "default"
REPLICA = "replica"
REPLICA_CHECK_SECONDS = 2.0
# How long a caught-up read waits for the replica to replay the primary's
# position before reading the primary instead (streaming replay takes milliseconds).
CAUGHT_UP_WAIT_SECONDS = 0.1

_LAG_SQL = """
SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN NULL
    -- replayed all it received, and still receiving: caught up however long ago the last commit was
    WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
         AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') THEN 0
    ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 1e9)
END
"""


class PrimaryRouter:
    """Reads and writes go to the primary unless a query names the replica; migrations
    run on the primary only (the replica receives them through replication)."""

    def db_for_read(self, model, **hints):
        return PRIMARY

    def db_for_write(self, model, **hints):
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == PRIMARY


# A query that fails with these could not reach its server (any other database error is a bug).
UNREACHABLE = (OperationalError, InterfaceError)


class _Health:
    def __init__(self):
        self.lock = threading.Lock()
        self.checked_at = float("-inf")
        self.usable = False


_health = _Health()


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def _replica_lag() -> float | None:
    """Seconds the replica's replay is behind (None: it is not a replica at all)."""
    with connections[REPLICA].cursor() as cursor:
        cursor.execute(_LAG_SQL)
        (lag,) = cursor.fetchone()
    return None if lag is None else float(lag)


def primary_answers() -> bool:
    """Whether the primary answers a query now (a connection that broke is closed, for the next to reconnect)."""
    try:
        with connections[PRIMARY].cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except UNREACHABLE:
        connections[PRIMARY].close()
        return False


def _replica_usable() -> bool:
    now = time.monotonic()
    if now - _health.checked_at < REPLICA_CHECK_SECONDS:
        return _health.usable
    with _health.lock:
        if now - _health.checked_at < REPLICA_CHECK_SECONDS:
            return _health.usable
        try:
            lag = _replica_lag()
            usable = lag is not None and lag <= settings.DATABASE_REPLICA_MAX_LAG_SECONDS
            if not usable and not primary_answers():
                logger.warning("the primary is unreachable: reads go to the replica (replay lag %s s; none: "
                               "promoted)", lag)
                usable = True
            elif not usable:
                logger.warning("replica not used: replay lag %s s (none: promoted, so it follows the primary "
                               "no more)", lag)
        except DatabaseError:
            logger.warning("replica not used: unreachable", exc_info=True)
            connections[REPLICA].close()
            usable = False
        _health.usable, _health.checked_at = usable, time.monotonic()
        return usable


def replica_down() -> None:
    """A query on the replica failed: use the primary until the next check."""
    with _health.lock:
        _health.usable, _health.checked_at = False, time.monotonic()
    connections[REPLICA].close()


def forget_replica_health() -> None:
    """Check the replica again on the next call (tests; a changed configuration)."""
    with _health.lock:
        _health.checked_at = float("-inf")


def _caught_up() -> bool:
    try:
        with connections[PRIMARY].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_insert_lsn()")
            (target,) = cursor.fetchone()
    except UNREACHABLE:
        # Nothing can be committed where nobody can reach: the replica holds all there is to read.
        logger.warning("the primary is unreachable: a caught-up read goes to the replica")
        connections[PRIMARY].close()
        return True
    deadline = time.monotonic() + CAUGHT_UP_WAIT_SECONDS
    with connections[REPLICA].cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target])
            if cursor.fetchone()[0]:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)


def replica_or_primary(*, caught_up: bool = False) -> str:
    """The database alias for a lag-tolerant read: ``replica`` when one is set and usable
    (and, with ``caught_up``, has replayed all the primary has committed), else ``default``."""
    if not replica_configured() or not _replica_usable():
        return PRIMARY
    if caught_up:
        try:
            if not _caught_up():
                return PRIMARY
        except DatabaseError:
            logger.warning("replica not used: unreachable", exc_info=True)
            replica_down()
            return PRIMARY
    return REPLICA


def primary_or_replica(fn):
    """``fn(PRIMARY)``, or ``fn(REPLICA)`` should the primary be unreachable and a replica answer:
    for reads the primary usually serves that would rather be a little stale than fail."""
    try:
        return fn(PRIMARY)
    except UNREACHABLE:
        if not replica_configured() or not _replica_usable():
            raise
        logger.warning("the primary is unreachable: reading the replica")
        return fn(REPLICA)


def read(fn, *, caught_up: bool = False):
    """``fn(alias)`` on the replica if usable, else (or should it fail there) on the primary."""
    return read_on(replica_or_primary(caught_up=caught_up), fn)[1]


def read_on(alias: str, fn):
    """``fn(alias)``, or ``fn(PRIMARY)`` should it fail on the replica: ``(the alias that
    answered, the result)``, for a caller that keeps reading where it began."""
    if alias == PRIMARY:
        return PRIMARY, fn(PRIMARY)
    try:
        return alias, fn(alias)
    except DatabaseError:
        logger.warning("replica read failed: reading the primary", exc_info=True)
        replica_down()
        return PRIMARY, fn(PRIMARY)
