"""Fan-out through a real Celery worker consuming real broker messages."""

import pytest
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
