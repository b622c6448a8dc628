"""Redis calls that fail fast: a circuit breaker per Redis server, per process.

Every Redis call of the product goes through the client class named in
``CACHES["default"]["OPTIONS"]["REDIS_CLIENT_CLASS"]``: ``BreakerRedis``, the
plain redis-py client whose commands, scripts and pipelines first ask the
breaker of their server. Socket timeouts (the same options) bound one call;
the breaker bounds how many calls wait: after ``REDIS_BREAKER_FAILURES``
consecutive connection errors or timeouts, every call is refused at once with
``CircuitOpen`` (a redis ``ConnectionError``, so every caller's existing
handling of an unreachable Redis applies) for ``REDIS_BREAKER_COOLDOWN_SECONDS``.
Then one call is let through as a trial: any answer closes the breaker (an
error reply too: the server is reachable), a connection error or a timeout
opens it for another cooldown. A frozen Redis thus costs each process
a few timeouts per cooldown instead of one per request, and requests do not
pile up behind it; a Redis that is back is noticed within a cooldown.

Whatever returns the connection (``get_redis_connection``, a cluster client
later) only needs to be built with this class for the breaker to apply.
"""
import threading
import time

from django.conf import settings
from redis import Redis
from redis.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

_FAILURES = (RedisConnectionError, RedisTimeoutError)


class CircuitOpen(RedisConnectionError):
    """Redis failed repeatedly just now: skipped without trying until the cooldown ends."""


class Breaker:
    def __init__(self, name: str, *, clock=time.monotonic):
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0

    @staticmethod
    def _threshold() -> int:
        return settings.REDIS_BREAKER_FAILURES

    @staticmethod
    def _cooldown() -> float:
        return settings.REDIS_BREAKER_COOLDOWN_SECONDS

    @property
    def is_open(self) -> bool:
        return self._failures >= self._threshold() and self._clock() < self._open_until

    def allow(self) -> None:
        """Raise ``CircuitOpen`` while open; past the cooldown, let one caller through as the trial."""
        with self._lock:
            if self._failures < self._threshold():
                return
            now = self._clock()
            if now < self._open_until:
                raise CircuitOpen(f"Redis at {self.name} is failing: skipped for a moment")
            self._open_until = now + self._cooldown()  # the others wait for this trial's outcome

    def succeeded(self) -> None:
        self._failures = 0

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            if self._failures >= self._threshold():
                self._open_until = self._clock() + self._cooldown()


_breakers: dict[str, Breaker] = {}
_registry_lock = threading.Lock()


def breaker_for(connection_pool) -> Breaker:
    """The breaker of the server a connection pool connects to (one per address, per process)."""
    kw = connection_pool.connection_kwargs
    name = kw.get("path") or f"{kw.get('host', 'localhost')}:{kw.get('port', 6379)}"
    breaker = _breakers.get(name)
    if breaker is None:
        with _registry_lock:
            breaker = _breakers.setdefault(name, Breaker(name))
    return breaker


def reset() -> None:
    """Forget every breaker's state (tests that break a Redis on purpose)."""
    _breakers.clear()


def _guarded(breaker: Breaker, call, *args, **kwargs):
    breaker.allow()
    try:
        result = call(*args, **kwargs)
    except _FAILURES:
        breaker.failed()
        raise
    except RedisError:
        # The server answered, with an error reply: it is reachable. (A Redis restarted empty
        # answers a script's first call NOSCRIPT; were the breaker left open, the script's
        # reload would be refused, and a process calling only scripts would never close it.)
        breaker.succeeded()
        raise
    breaker.succeeded()
    return result


class BreakerPipeline(Pipeline):
    def execute(self, raise_on_error: bool = True):
        if not self.command_stack:
            return super().execute(raise_on_error)
        return _guarded(breaker_for(self.connection_pool), super().execute, raise_on_error)


class BreakerRedis(Redis):
    """redis-py's client, every call guarded by its server's breaker."""

    def execute_command(self, *args, **options):
        return _guarded(breaker_for(self.connection_pool), super().execute_command, *args, **options)

    def pipeline(self, transaction=True, shard_hint=None) -> Pipeline:
        return BreakerPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
