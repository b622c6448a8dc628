"""Fan-out through a real Celery worker consuming real broker messages."""

import contextlib
import threading

import pytest
from django.db import connection
from django.db.backends.signals import connection_created
from django.test import override_settings

from tests.helpers import wait_for
from timelines import store

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@override_settings(FANOUT_BATCH_SIZE=4)
def test_a_worker_delivers_the_tweet_and_followers_read_it(celery_worker, make_user, api, redis):
    author = make_user()
    followers = [make_user() for _ in range(10)]
    for f in followers:
        api(f).post(f"/v1/users/{author.id}/follow")
        assert api(f).get("/v1/timeline/home").json()["data"] == []  # caches an empty timeline
    r = api(author).post("/v1/tweets", {"content": "through the broker"}, format="json")
    assert r.status_code == 201
    tweet_id = r.json()["tweet_id"]
    # The request returned before the fan-out: it happens in the worker, in 3 tasks of 4.
    wait_for(lambda: all(redis.lindex(store.timeline_key(f.id), 0) == tweet_id.encode() for f in followers),
             what="the worker to deliver the tweet to every follower")
    for f in followers:
        page = api(f).get("/v1/timeline/home").json()
        assert [t["tweet_id"] for t in page["data"]] == [tweet_id]
        assert page["data"][0]["content"] == "through the broker"


@contextlib.contextmanager
def _connections_opened_by_the_worker():
    """The database connections opened meanwhile by threads other than the test's own (the worker's)."""
    opened = []

    def count(sender, connection, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            opened.append(connection.alias)

    connection_created.connect(count, weak=False)
    try:
        yield opened
    finally:
        connection_created.disconnect(count)


def test_a_worker_keeps_its_database_connection_from_task_to_task(celery_worker, make_user, api, redis):
    author, reader = make_user(), make_user()
    api(reader).post(f"/v1/users/{author.id}/follow")
    api(reader).get("/v1/timeline/home")
    with _connections_opened_by_the_worker() as opened:
        posted = [api(author).post("/v1/tweets", {"content": f"t{n}"}, format="json").json()["tweet_id"]
                  for n in range(8)]
        wait_for(lambda: redis.lindex(store.timeline_key(reader.id), 0) == posted[-1].encode(),
                 what="the worker to deliver the last tweet")
    # One session per worker thread at most, not one per task (Celery's default closes them around each).
    assert 1 <= len(opened) <= 2, opened


def test_a_worker_whose_database_session_was_killed_connects_again(celery_worker, make_user, api, redis):
    author, reader = make_user(), make_user()
    api(reader).post(f"/v1/users/{author.id}/follow")
    api(reader).get("/v1/timeline/home")
    first = api(author).post("/v1/tweets", {"content": "before"}, format="json").json()["tweet_id"]
    wait_for(lambda: redis.lindex(store.timeline_key(reader.id), 0) == first.encode(), what="the first delivery")
    with connection.cursor() as cursor:  # the worker's sessions end, as when PostgreSQL restarts
        cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        assert cursor.fetchone()[0] >= 1
    second = api(author).post("/v1/tweets", {"content": "after"}, format="json").json()["tweet_id"]
    wait_for(lambda: redis.lindex(store.timeline_key(reader.id), 0) == second.encode(),
             what="the worker to deliver through a new session (its task retried)")
