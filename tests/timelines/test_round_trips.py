"""What a warm first page costs in Redis round trips, counted as the SQL queries are.

The reader's authentication, the rate limit and the cached timeline go in one
round trip, the page's tweets with their authors in a second; a reader following
a celebrity reads the celebrity's pulled list in a third. Past the cache and on
a cold timeline pages cost more, and that is measured elsewhere (the benchmark).
"""
import pytest
from django.test import override_settings

from social import services as social_services
from tests.helpers import page
from tweets import services as tweet_services

pytestmark = pytest.mark.django_db(transaction=True)


def _reader_of(make_user, api, *authors):
    reader = make_user()
    for author in authors:
        social_services.follow_create(follower=reader, followee_id=author.id)
    return api(reader)


def _warm_page(client, django_assert_num_queries, redis_round_trips, expected_ids):
    assert [t["tweet_id"] for t in page(client, limit=20)["data"]] == expected_ids  # warms every cache
    with django_assert_num_queries(0), redis_round_trips as trips:
        body = page(client, limit=20)
    assert [t["tweet_id"] for t in body["data"]] == expected_ids
    return trips.count


def test_a_warm_first_page_costs_two_round_trips_and_no_query(make_user, api, django_assert_num_queries,
                                                             redis_round_trips):
    authors = [make_user() for _ in range(3)]
    client = _reader_of(make_user, api, *authors)
    page(client)  # the timeline is cached from now on: fan-out writes into it
    posted = [str(tweet_services.tweet_create(author=a, content=f"{a.username} {k}").id)
              for k in range(4) for a in authors]
    assert _warm_page(client, django_assert_num_queries, redis_round_trips, posted[::-1]) == 2


@override_settings(TIMELINE_CELEBRITY_THRESHOLD=2)
def test_a_reader_of_a_celebrity_pays_one_round_trip_more(make_user, api, django_assert_num_queries,
                                                         redis_round_trips):
    celebrity, friend = make_user(), make_user()
    client = _reader_of(make_user, api, celebrity, friend)
    for _ in range(2):  # the celebrity's followers reach the threshold: their tweets are pulled
        social_services.follow_create(follower=make_user(), followee_id=celebrity.id)
    page(client)
    posted = [str(tweet_services.tweet_create(author=a, content="hello").id) for a in (celebrity, friend) * 3]
    assert _warm_page(client, django_assert_num_queries, redis_round_trips, posted[::-1]) == 3


def test_the_round_trip_count_sees_every_trip(redis, redis_round_trips):
    """The counter itself: a command, a pipeline and a script call are one each."""
    with redis_round_trips as trips:
        redis.get("test:nothing")
        pipe = redis.pipeline(transaction=False)
        pipe.get("test:a")
        pipe.get("test:b")
        pipe.execute()
    assert trips.count == 2
