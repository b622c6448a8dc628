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
"""
import os
import secrets
import threading
import time
from datetime import datetime, timezone

from django.conf import settings
from django_redis import get_redis_connection

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
WORKER_ID_BITS = 10
SEQUENCE_BITS = 12
MAX_WORKER_ID = (1 << WORKER_ID_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
TIMESTAMP_SHIFT = WORKER_ID_BITS + SEQUENCE_BITS

# Renew well inside the lease, and never mint later than this after a renewal,
# so the high-water mark is never further behind than this.
RENEW_EVERY_MS = 5_000

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  local hw = tonumber(redis.call('GET', KEYS[2]) or '0')
  if tonumber(ARGV[3]) > hw then redis.call('SET', KEYS[2], ARGV[3]) end
  return 1
end
return 0
"""


class LeaseUnavailable(RuntimeError):
    """All 1024 worker ids are leased: refuse to mint rather than risk a duplicate."""


def timestamp_ms_of(snowflake_id: int) -> int:
    return (snowflake_id >> TIMESTAMP_SHIFT) + EPOCH_MS


def datetime_of(snowflake_id: int) -> datetime:
    return datetime.fromtimestamp(timestamp_ms_of(snowflake_id) / 1000, tz=timezone.utc)


def lowest_id_at(ms: int) -> int:
    """The smallest id minted at unix millisecond ``ms`` (for id-range queries by time)."""
    return max(ms - EPOCH_MS, 0) << TIMESTAMP_SHIFT


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class SnowflakeGenerator:
    def __init__(self, *, clock=_now_ms):
        self._clock = clock
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._worker_id: int | None = None
        self._token = ""
        self._renewed_at = 0
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
            if redis.set(lease_key, token, nx=True, ex=settings.SNOWFLAKE_LEASE_SECONDS):
                high_water = int(redis.get(hw_key) or 0)
                self._worker_id, self._token, self._pid = worker_id, token, os.getpid()
                self._renewed_at = now
                # The previous holder may have minted up to RENEW_EVERY_MS past its last mark.
                if high_water:
                    self._last_ms = max(self._last_ms, high_water + RENEW_EVERY_MS + 1)
                # A new worker id may sort below the old one: start a fresh millisecond.
                self._sequence = MAX_SEQUENCE
                return
        raise LeaseUnavailable("every Snowflake worker id is leased")

    def _ensure_lease(self, now: int) -> None:
        if self._pid == os.getpid() and now - self._renewed_at < RENEW_EVERY_MS:
            return
        redis = get_redis_connection("default")
        if self._pid == os.getpid():
            lease_key, hw_key = self._keys(self._worker_id)
            renewed = redis.eval(_RENEW, 2, lease_key, hw_key, self._token,
                                 settings.SNOWFLAKE_LEASE_SECONDS, max(self._last_ms, now))
            if renewed:
                self._renewed_at = now
                return
        self._acquire(redis, now)

    @property
    def worker_id(self) -> int | None:
        return self._worker_id if self._pid == os.getpid() else None

    def next_id(self) -> int:
        with self._lock:
            now = self._clock()
            self._ensure_lease(now)
            if now > self._last_ms:
                self._last_ms, self._sequence = now, 0
            elif self._sequence < MAX_SEQUENCE:
                self._sequence += 1
            else:
                # Sequence exhausted within this millisecond (or the clock went
                # back): borrow the next millisecond rather than wait or repeat.
                self._last_ms, self._sequence = self._last_ms + 1, 0
            return ((self._last_ms - EPOCH_MS) << TIMESTAMP_SHIFT) | (self._worker_id << SEQUENCE_BITS) | self._sequence


_generator = SnowflakeGenerator()


def next_id() -> int:
    return _generator.next_id()
