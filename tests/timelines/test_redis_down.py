"""Redis unreachable (connection refused): reads come from PostgreSQL, posts commit, nothing is lost.

The product's Redis is pointed at a port nothing listens on (``redis_down``),
the way a killed server answers; PostgreSQL stays up.
"""
import pytest
from django.test import override_settings

from tests.helpers import cached, on_one_redis_server, post, scroll
from timelines import services, store
from timelines.models import PendingFanout

pytestmark = pytest.mark.django_db(transaction=True)


@override_settings(TIMELINE_CELEBRITY_THRESHOLD=3)
def test_with_redis_down_every_timeline_scrolls_the_same_from_postgresql(make_user, api, redis_down):
    redis_down(False)
    reader, friend, other, celebrity = make_user(), make_user(), make_user(), make_user()
    for fan in (reader, friend, other):
        assert api(fan).post(f"/v1/users/{celebrity.id}/follow").status_code == 200
    assert api(reader).post(f"/v1/users/{friend.id}/follow").status_code == 200
    for i in range(7):  # pushed tweets, the reader's own, pulled ones and an unfollowed author's
        for author in (friend, celebrity, reader, other):
            post(api(author), f"tweet {i}")
    deleted = post(api(friend), "deleted")
    assert api(friend).delete(f"/v1/tweets/{deleted}").status_code == 204
    cached = scroll(api(reader), limit=5)
    assert len(cached) == 21 and deleted not in cached

    redis_down(True)
    assert scroll(api(reader), limit=5) == cached  # also authenticated, hydrated and rate-limited without Redis
    assert scroll(api(reader), limit=50) == cached


@on_one_redis_server
def test_with_redis_down_a_post_answers_201_and_its_fanout_waits_for_the_reconciler(make_user, api, redis_down):
    redis_down(False)
    author, follower = make_user(), make_user()
    assert api(follower).post(f"/v1/users/{author.id}/follow").status_code == 200
    first = post(api(author), "before")  # the process now holds a Snowflake lease
    assert [t for t in scroll(api(follower))] == [first]

    redis_down(True)
    second = post(api(author), "while Redis is down")  # the held lease mints; the fan-out fails
    assert PendingFanout.objects.filter(tweet_id=int(second)).exists()
    assert scroll(api(follower)) == [second, first]  # from PostgreSQL

    redis_down(False)
    assert cached(store.timeline_key(follower.id)) == [first, "0"]
    assert services.fanout_reconcile(older_than_seconds=0) == 1
    assert not PendingFanout.objects.exists()
    assert scroll(api(follower)) == [second, first]
    assert cached(store.timeline_key(follower.id)) == [second, first, "0"]
