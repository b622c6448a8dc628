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

Whatever returns the connection only needs to be built with this class for
the breaker to apply: ``get_redis_connection`` names ``BreakerRedis``, and the
cluster client of ``core.redis`` (``REDIS_CLUSTER``) builds its connection to
each node with ``BreakerConnection``, so each node of a cluster has a breaker
of its own: a frozen master fails fast while the others serve on.

``Breaker`` itself knows nothing of Redis: PostgreSQL's connections use one per
server too (``core/postgres``), with their own settings and their own error.
"""
import threading
import time
from collections.abc import Callable

from django.conf import settings
from redis import Redis
from redis.client import Pipeline
from redis.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

_FAILURES = (RedisConnectionError, RedisTimeoutError)


class CircuitOpen(RedisConnectionError):
    """Redis failed repeatedly just now: skipped without trying until the cooldown ends."""


class Breaker:
    """The consecutive failures of one server, and whether to call it now.

    ``settings_prefix`` names its two settings (``<prefix>_BREAKER_FAILURES`` and
    ``<prefix>_BREAKER_COOLDOWN_SECONDS``, read at each use so tests can change
    them); ``refusal`` is the error ``allow`` raises while open, given a message:
    one its callers already handle as the server being unreachable.
    """

    def __init__(self, name: str, *, what: str = "Redis", settings_prefix: str = "REDIS",
                 refusal: Callable[[str], Exception] = CircuitOpen, clock=time.monotonic):
        self.name, self.what = name, what
        self._prefix, self._refusal = settings_prefix, refusal
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._open_until = 0.0

    def _threshold(self) -> int:
        return getattr(settings, f"{self._prefix}_BREAKER_FAILURES")

    def _cooldown(self) -> float:
        return getattr(settings, f"{self._prefix}_BREAKER_COOLDOWN_SECONDS")

    @property
    def is_open(self) -> bool:
        return self._failures >= self._threshold() and self._clock() < self._open_until

    def allow(self) -> None:
        """Raise the refusal while open; past the cooldown, let one caller through as the trial."""
        with self._lock:
            if self._failures < self._threshold():
                return
            now = self._clock()
            if now < self._open_until:
                raise self._refusal(f"{self.what} at {self.name} is failing: skipped for a moment")
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


def registered(key: str, make: Callable[[], Breaker]) -> Breaker:
    """The process's breaker under ``key`` (a kind of server and its address), made on first use."""
    breaker = _breakers.get(key)
    if breaker is None:
        with _registry_lock:
            breaker = _breakers.get(key) or _breakers.setdefault(key, make())
    return breaker


def breaker_for(connection_pool) -> Breaker:
    """The breaker of the server a connection pool connects to (one per address, per process)."""
    kw = connection_pool.connection_kwargs
    return _breaker_named(kw.get("path") or f"{kw.get('host', 'localhost')}:{kw.get('port', 6379)}")


def _breaker_named(name: str) -> Breaker:
    """The breaker of the Redis server at ``name`` (``host:port``, or a socket's path)."""
    return registered(f"redis {name}", lambda: Breaker(name))


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


class BreakerConnection(Connection):
    """A connection to one node of a cluster, guarded by that node's breaker.

    The cluster client sends commands and pipelines over its nodes' connections
    itself, not through a ``Redis`` object's ``execute_command``, so the guard
    sits on the connection: sending asks the breaker (``CircuitOpen`` while it
    is open, which the cluster client takes for an unreachable node: it reloads
    the slot map and gives up or goes elsewhere), a failed send or read counts
    against it, and a reply read closes it.
    """

    def _breaker(self) -> Breaker:
        return _breaker_named(f"{self.host}:{self.port}")

    def send_packed_command(self, command, check_health=True):
        breaker = self._breaker()
        breaker.allow()
        try:
            return super().send_packed_command(command, check_health)
        except _FAILURES:
            breaker.failed()
            raise

    def read_response(self, *args, **kwargs):
        try:
            response = super().read_response(*args, **kwargs)
        except _FAILURES:
            self._breaker().failed()
            raise
        self._breaker().succeeded()
        return response
