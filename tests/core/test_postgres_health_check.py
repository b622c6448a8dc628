"""The check before a request's first query (``CONN_HEALTH_CHECKS``) is skipped for a
connection that answered within ``core.postgres.base.HEALTHY_FOR``: a busy process no
longer pays a ``SELECT 1`` round trip per request (``BoundedConnection.answered_at``
records each answer the server gives)."""
import pytest
from django.db import connection, connections

from core.postgres.base import HEALTHY_FOR

pytestmark = [pytest.mark.django_db(transaction=True)]


def _first_query_of_a_request() -> None:
    connection.health_check_done = False  # as close_old_connections leaves it when a request starts
    connection.cursor().close()  # where Django checks the connection; a cursor alone sends nothing


def test_a_connection_that_answered_within_a_second_is_not_checked_again():
    assert connection.health_check_enabled
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    raw = connection.connection
    answered = raw.answered_at
    _first_query_of_a_request()
    assert connection.connection is raw and raw.answered_at == answered  # no round trip


def test_a_connection_idle_for_longer_is_checked_and_one_found_broken_is_replaced():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    raw = connection.connection
    raw.answered_at -= HEALTHY_FOR  # as if the last answer came a second ago
    before = raw.answered_at
    _first_query_of_a_request()
    assert connection.connection is raw and raw.answered_at > before  # the check's SELECT 1 was answered

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    other = connections.create_connection("default")  # the server ends it, as a restart or idle timeout would
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()
    raw.answered_at -= HEALTHY_FOR
    _first_query_of_a_request()
    assert connection.connection is not raw  # the check failed: a new connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
