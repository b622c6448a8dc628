"""The benchmark's fan-out timings: recorded from the app's ``fanout_batch_done`` only where the bench asks."""
import pytest
from django.test import override_settings

import bench
from bench import fanout_timings
from bench.apps import BenchConfig
from social import services as social_services
from tests.helpers import page
from timelines.signals import fanout_batch_done
from tweets import services as tweet_services

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def recording():
    fanout_batch_done.connect(fanout_timings.record, dispatch_uid="test_fanout_timings")
    yield
    fanout_batch_done.disconnect(dispatch_uid="test_fanout_timings")


def test_a_fanout_records_where_its_time_went(make_user, api, recording):
    author = make_user()
    readers = [make_user() for _ in range(3)]
    for reader in readers:
        social_services.follow_create(follower=reader, followee_id=author.id)
    for user in (author, *readers):
        page(api(user))  # cached: the fan-out writes into it
    tweet = tweet_services.tweet_create(author=author, content="timed")
    timings = fanout_timings.fanout_timings(tweet_id=tweet.id)
    assert timings is not None
    assert (timings["followers"], timings["written"], timings["batches"]) == (3, 4, 1)  # and the author's own
    assert all(timings[k] >= 0 for k in ("queued_ms", "pg_ms", "redis_ms"))
    assert timings["done_ms"] >= timings["queued_ms"]


def test_no_timings_are_recorded_without_the_receiver(make_user):
    tweet = tweet_services.tweet_create(author=make_user(), content="untimed")
    assert fanout_timings.fanout_timings(tweet_id=tweet.id) is None


@pytest.mark.parametrize("on", [True, False])
def test_the_bench_app_connects_the_receiver_only_when_its_setting_asks(on):
    with override_settings(BENCH_FANOUT_TIMINGS=on):
        BenchConfig("bench", bench).ready()
    try:
        assert fanout_batch_done.has_listeners() is on
    finally:
        fanout_batch_done.disconnect(dispatch_uid="bench_fanout_timings")
