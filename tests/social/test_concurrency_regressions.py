"""Follow writes and Snowflake leases under concurrency."""
import threading
import time

import pytest
from django.db import connection, connections

from social import services as social_services
from social.models import User
from tweets import snowflake

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_repeated_follow_racing_an_unfollow_does_not_deadlock(make_user):
    a, b = make_user(), make_user()
    social_services.follow_create(follower=a, followee_id=b.id)
    go, errors = threading.Event(), []

    def unfollow():
        assert go.wait(30), "the follow never reached its edge"
        try:
            social_services.follow_delete(follower=User.objects.get(id=a.id), followee_id=b.id)
        except Exception as e:  # noqa
            errors.append(e)
        finally:
            connections.close_all()

    def wrapper(execute, sql, params, many, context):
        if 'FROM "social_follow"' in sql and not go.is_set():  # both user rows locked, the edge next
            go.set()
            time.sleep(0.5)  # unfollow deletes the edge and blocks on the user rows we hold
        return execute(sql, params, many, context)

    t = threading.Thread(target=unfollow)
    t.start()
    try:
        with connection.execute_wrapper(wrapper):
            social_services.follow_create(follower=a, followee_id=b.id)
    except Exception as e:  # noqa
        errors.append(e)
    t.join()
    assert not errors, errors


def test_the_next_holder_of_a_worker_id_starts_past_the_last_before_any_renewal(settings):
    settings.SNOWFLAKE_LEASE_SECONDS = 2  # below the allowed minimum, only to let it expire quickly
    t0 = snowflake._now_ms()
    clock = {"ms": t0}
    p1 = snowflake.SnowflakeGenerator(clock=lambda: clock["ms"])
    p1.next_id()
    with connection.cursor() as cursor:  # every other worker id leased elsewhere (the table is flushed after)
        cursor.execute("UPDATE tweets_snowflakelease SET expires_at = 'infinity' WHERE worker_id <> %s",
                       [p1.worker_id])
    time.sleep(2.2)  # lease expires (p1 would only renew after 5 s of its clock)
    clock["ms"] = t0 + 2_200
    p2 = snowflake.SnowflakeGenerator(clock=lambda: clock["ms"])
    try:
        a, b = p1.next_id(), p2.next_id()
    finally:
        p1.close()
        p2.close()
    assert p1.worker_id == p2.worker_id
    assert a != b
