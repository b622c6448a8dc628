"""Snowflake ids: 41 bits of milliseconds since ``EPOCH_MS``, 10 bits of worker id, 12 of sequence.

Every process that mints ids holds a worker id leased from Redis (``SET NX EX``),
so two processes can never mint in the same id space at once. The lease is
renewed while minting and a lost lease is replaced by a new one. Per process the
ids strictly increase: the clock is read as ``max(now, last)``, so a clock that
steps back keeps minting from the last millisecond (borrowing the next one when
the sequence runs out) instead of re-minting ids. Each worker id also records a
high-water mark of its last millisecond, so the next process to lease it starts
past what its previous holder could have minted, even if its clock is behind.
A forked child (Celery prefork, gunicorn) notices the pid change and leases its own id.

Posting must not need Redis at the moment it posts: a held lease stays valid
until its known expiry, so when a renewal fails (Redis down or frozen) the
process keeps minting until ``EXPIRY_MARGIN_MS`` before that expiry, and never
in a millisecond past the lease's last high-water mark plus the lease time (so
the next holder, which starts past that, cannot repeat an id). Web workers
lease at start and keep their lease renewed in the background
(``keep_leased``), so even one that never posted holds one when Redis goes away.
"""
import logging
import os
import secrets
import threading
import time
from datetime import UTC, datetime

from django.conf import settings

from core import redis as core_redis
from core.exceptions import ApplicationError

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
WORKER_ID_BITS = 10
SEQUENCE_BITS = 12
MAX_WORKER_ID = (1 << WORKER_ID_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
TIMESTAMP_SHIFT = WORKER_ID_BITS + SEQUENCE_BITS

# Renew well inside the lease, and never mint later than this after a renewal,
# so the high-water mark is never further behind than this.
RENEW_EVERY_MS = 5_000
# Without a renewal, stop minting this long before the lease runs out (a clock
# between processes, a renewal in flight).
EXPIRY_MARGIN_MS = 5_000

_ACQUIRE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return -1 end
local hw = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[3]) > hw then redis.call('SET', KEYS[2], ARGV[3]) end
return hw
"""

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  local hw = tonumber(redis.call('GET', KEYS[2]) or '0')
  if tonumber(ARGV[3]) > hw then redis.call('SET', KEYS[2], ARGV[3]) end
  return 1
end
return 0
"""


logger = logging.getLogger(__name__)


def _lease_ms() -> int:
    return settings.SNOWFLAKE_LEASE_SECONDS * 1000


class LeaseUnavailable(ApplicationError):
    """All 1024 worker ids are leased: refuse to mint rather than risk a duplicate."""

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


class SnowflakeGenerator:
    def __init__(self, *, clock=_now_ms, monotonic=_monotonic_ms):
        self._clock = clock
        self._monotonic = monotonic  # times lease renewals: immune to clock steps
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._worker_id: int | None = None
        self._token = ""
        self._renewed_at = 0
        self._recorded_ms = 0  # the high-water mark the last acquisition or renewal stored
        self._last_ms = 0
        self._sequence = 0

    def _keys(self, worker_id: int) -> tuple[str, str]:
        prefix = f"{settings.REDIS_KEY_PREFIX}snowflake:{{{worker_id}}}"
        return f"{prefix}:lease", f"{prefix}:hw"

    def _acquire(self, redis, now: int) -> None:
        token = f"{os.getpid()}:{secrets.token_hex(8)}"
        start = secrets.randbelow(MAX_WORKER_ID + 1)
        for offset in range(MAX_WORKER_ID + 1):
            worker_id = (start + offset) % (MAX_WORKER_ID + 1)
            lease_key, hw_key = self._keys(worker_id)
            high_water = redis.eval(_ACQUIRE, 2, lease_key, hw_key, token,
                                    settings.SNOWFLAKE_LEASE_SECONDS, max(self._last_ms, now))
            if high_water < 0:
                continue
            self._worker_id, self._token, self._pid = worker_id, token, os.getpid()
            self._renewed_at = self._monotonic()
            self._recorded_ms = max(self._last_ms, now)
            # The previous holder may have minted up to RENEW_EVERY_MS past its last
            # mark, or up to a lease's time while Redis could not take its renewals.
            if high_water:
                self._last_ms = max(self._last_ms, high_water + max(RENEW_EVERY_MS, _lease_ms()) + 1)
            # A new worker id may sort below the old one: start a fresh millisecond.
            self._sequence = MAX_SEQUENCE
            return
        raise LeaseUnavailable("Every Snowflake worker id is leased; try again shortly.")

    def _ensure_lease(self, now: int, *, force_renewal: bool = False) -> None:
        held = self._pid == os.getpid()
        age = self._monotonic() - self._renewed_at
        if held and age < RENEW_EVERY_MS and not force_renewal:
            return
        try:
            self._renew_or_acquire(now, held=held)
        except core_redis.UNREACHABLE:
            # Redis is unreachable: a held lease is still ours until it expires.
            limit = _lease_ms() - EXPIRY_MARGIN_MS
            if held and age < limit and max(self._last_ms, now) < self._recorded_ms + limit:
                return
            raise

    def _renew_or_acquire(self, now: int, *, held: bool) -> None:
        redis = core_redis.connection()
        if held:
            assert self._worker_id is not None  # held: this process leased one
            lease_key, hw_key = self._keys(self._worker_id)
            mark = max(self._last_ms, now)
            renewed = redis.eval(_RENEW, 2, lease_key, hw_key, self._token, settings.SNOWFLAKE_LEASE_SECONDS, mark)
            if renewed:
                self._renewed_at, self._recorded_ms = self._monotonic(), mark
                return
        self._acquire(redis, now)

    def keep_leased(self) -> threading.Event:
        """Lease now, and renew every ``RENEW_EVERY_MS`` from a daemon thread of this process
        (a web worker: it can then mint through a Redis outage even if it never posted before).
        Setting the returned event stops the renewals."""
        stop = threading.Event()

        def renew_until_stopped():
            while not stop.is_set():
                with self._lock:
                    try:
                        self._ensure_lease(self._clock())
                    except Exception as error:  # noqa: BLE001 - Redis down: tried again next round, or when minting
                        logger.warning("could not renew the Snowflake lease: %s", error)
                stop.wait(RENEW_EVERY_MS / 2000)

        threading.Thread(target=renew_until_stopped, name="snowflake-lease", daemon=True).start()
        return stop

    @property
    def worker_id(self) -> int | None:
        return self._worker_id if self._pid == os.getpid() else None

    def next_id(self, *, after: int = 0) -> int:
        """The next id of this process; also greater than ``after`` when given."""
        with self._lock:
            now = self._clock()
            jumped = False
            if after and timestamp_ms_of(after) >= self._last_ms:
                # Skip ahead to ``after``'s millisecond, and record the jump in the
                # lease's high-water mark before minting there.
                self._last_ms, self._sequence, jumped = timestamp_ms_of(after), MAX_SEQUENCE, True
            self._ensure_lease(now, force_renewal=jumped)
            if now > self._last_ms:
                self._last_ms, self._sequence = now, 0
            elif self._sequence < MAX_SEQUENCE:
                self._sequence += 1
            else:
                # Sequence exhausted within this millisecond (or the clock went
                # back): borrow the next millisecond rather than wait or repeat.
                self._last_ms, self._sequence = self._last_ms + 1, 0
            assert self._worker_id is not None  # _ensure_lease returned: this process holds one
            return ((self._last_ms - EPOCH_MS) << TIMESTAMP_SHIFT) | (self._worker_id << SEQUENCE_BITS) | self._sequence


_generator = SnowflakeGenerator()


def next_id(*, after: int = 0) -> int:
    return _generator.next_id(after=after)


def keep_leased() -> threading.Event:
    """Hold this process's lease from now on (see ``SnowflakeGenerator.keep_leased``)."""
    return _generator.keep_leased()
