"""PostgreSQL connections that fail fast when the server stops answering.

A frozen server (SIGSTOP, a machine that hangs, a network that drops packets
both ways) is worse than one that is down: nothing refuses the connection, and
a query waits for an answer that never comes. The server's own
``statement_timeout`` ends nothing, since the server does not run; TCP
keepalives do not help either, as the kernel of a stopped server still answers
them. So the client must stop waiting itself:

- connecting is bounded by libpq's ``connect_timeout`` (``DATABASE_CONNECT_TIMEOUT``);
- every later wait on the socket (a statement's answer, a commit, a rollback, a
  ``SET``) goes through psycopg's ``Connection.wait``, which ``BoundedConnection``
  gives a deadline of ``DATABASE_QUERY_TIMEOUT``. A wait past it leaves the
  connection in an unknown state, so the connection is closed (Django opens a
  new one when next needed) and ``QueryTimeout`` is raised;
- a circuit breaker per server and process (``core.breaker.Breaker``, settings
  ``DATABASE_BREAKER_*``) counts the connections that failed and the waits that
  timed out or lost their connection. Past ``DATABASE_BREAKER_FAILURES`` in a
  row, connecting and every wait are refused at once with ``DatabaseUnavailable``
  for ``DATABASE_BREAKER_COOLDOWN_SECONDS``; then one call is let through as the
  trial. A frozen server thus costs each process a few bounded waits per
  cooldown, and requests do not pile up behind it.

A persistent connection (``CONN_MAX_AGE``) is checked with a ``SELECT 1`` before
a request's first query (``CONN_HEALTH_CHECKS``), unless it answered within the
last ``HEALTHY_FOR`` seconds (``BoundedConnection.answered_at``): on a busy
process that check was a round trip on every request for a connection that had
just answered. One that broke within that second fails its next query, which
marks the connection for the check at the end of that request.

Each error is a psycopg ``OperationalError``, which Django raises as its own
``OperationalError``: ``core.exceptions`` answers it ``503`` with ``Retry-After``,
and Celery tasks retry it as any other failure. Slow statements on a server that
runs are ended by the server first (``statement_timeout``, set a little below
the client's bound in the settings), which keeps the connection usable.
"""
import time
import typing
from typing import TypeVar

import psycopg
from django.conf import settings
from django.db.backends.postgresql import base
from psycopg import errors
from psycopg.abc import PQGen

from core.breaker import Breaker, registered

RV = TypeVar("RV")
# psycopg's default: how often a wait wakes up to let a Ctrl-C through.
_WAIT_INTERVAL = 0.1
# A connection that answered this recently is taken as healthy without a check.
HEALTHY_FOR = 1.0


class DatabaseUnavailable(psycopg.OperationalError):
    """PostgreSQL failed repeatedly just now: skipped without trying until the cooldown ends."""


class QueryTimeout(psycopg.OperationalError):
    """PostgreSQL did not answer within ``DATABASE_QUERY_TIMEOUT``: the connection was closed."""


def _breaker(host: str, port: str | int) -> Breaker:
    name = f"{host}:{port}"
    return registered(f"postgresql {name}", lambda: Breaker(name, what="PostgreSQL", settings_prefix="DATABASE",
                                                              refusal=DatabaseUnavailable))


class BoundedConnection(psycopg.Connection):
    """psycopg's connection, each wait on the server bounded and guarded by the server's breaker."""

    breaker: Breaker
    wait_timeout: float | None = None
    answered_at = float("-inf")  # time.monotonic() of the server's last answer

    def wait(self, gen: PQGen[RV], interval: float = _WAIT_INTERVAL, timeout: float | None = None) -> RV:
        if timeout is not None:  # the caller bounds this wait itself (psycopg's notifies())
            return super().wait(gen, interval, timeout)
        self.breaker.allow()
        try:
            result = super().wait(gen, interval, self.wait_timeout)
        except errors._WaitTimeout:  # what Connection.wait raises past its timeout
            self.breaker.failed()
            # Whatever the server does with the statement, this connection cannot be
            # trusted to be in step with it any more: closed, as psycopg does after a
            # cancellation that got no answer.
            self.pgconn.finish()
            raise QueryTimeout(f"PostgreSQL did not answer within {self.wait_timeout} s") from None
        except psycopg.OperationalError:  # the connection was lost while waiting
            self.breaker.failed()
            raise
        self.breaker.succeeded()
        self.answered_at = time.monotonic()
        return result


class DatabaseWrapper(base.DatabaseWrapper):
    health_check_done: bool  # set in Django's __init__, unannotated there

    def ensure_connection(self):
        if self.connection is not None and self.connection.closed and not self.in_atomic_block:
            # A wait that timed out closed it (BoundedConnection): outside a transaction,
            # the next use connects afresh, as it would after Django closed it.
            self.close()
        super().ensure_connection()

    def close_if_health_check_failed(self):
        if (self.connection is not None and not self.health_check_done
                and time.monotonic() - self.connection.answered_at < HEALTHY_FOR):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()

    def get_new_connection(self, conn_params):
        breaker = _breaker(conn_params.get("host") or "localhost", conn_params.get("port") or 5432)
        breaker.allow()
        try:
            connection = super().get_new_connection(conn_params)
        except psycopg.OperationalError:
            breaker.failed()
            raise
        breaker.succeeded()
        return bounded(connection, breaker)


def bounded(connection: psycopg.Connection, breaker: Breaker | None = None) -> BoundedConnection:
    """``connection``, each later wait bounded and guarded by its server's breaker (``breaker``, or the one of
    the server it is connected to): for Django's connections, and for one a module opens itself (the Snowflake
    lease's)."""
    if breaker is None:
        info = connection.info
        breaker = _breaker(info.host or "localhost", info.port or 5432)
    # psycopg.connect() always builds a plain Connection (it takes no class to build),
    # and Django's get_new_connection calls it: the connection is adopted as a
    # BoundedConnection, which adds behaviour only, before any query runs on it.
    connection.__class__ = BoundedConnection
    adopted = typing.cast(BoundedConnection, connection)
    adopted.breaker = breaker
    adopted.wait_timeout = settings.DATABASE_QUERY_TIMEOUT or None
    return adopted
