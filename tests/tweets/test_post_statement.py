"""A post is one statement to PostgreSQL: the author's row (the mint's record), the tweet
and its pending fan-out (the timelines app's trigger) written together, in autocommit,
so one round trip. The fan-out is still started after it, and still reaches the timelines."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.helpers import ids, post, wait_for
from timelines.models import PendingFanout
from tweets import services as tweet_services
from tweets.models import Tweet


@pytest.mark.django_db(transaction=True)
def test_a_post_is_one_statement_and_reaches_the_followers(make_user, api, celery_worker):
    author, follower = make_user(), make_user()
    api(follower).post(f"/v1/users/{author.id}/follow")
    client = api(author)
    post(client, "the first")  # the author's caches warm, as on a server that runs
    with CaptureQueriesContext(connection) as queries:
        tweet_id = post(client, "one round trip")
    assert len(queries) == 1, [q["sql"] for q in queries]
    assert Tweet.objects.get(id=tweet_id).content == "one round trip"
    wait_for(lambda: tweet_id in ids(api(follower)), what="the tweet in the follower's timeline")
    wait_for(lambda: not PendingFanout.objects.filter(tweet_id=tweet_id).exists(), what="the fan-out done")


@pytest.mark.django_db  # in a transaction never committed: no fan-out is ever sent
def test_every_tweet_inserted_has_its_pending_fanout_from_its_own_insert(make_user):
    author = make_user()
    posted = tweet_services.tweet_create(author=author, content="posted")
    assert PendingFanout.objects.filter(tweet_id=posted.id).exists()
    # Inserted any other way, too: the row comes from PostgreSQL, not from the code that inserts.
    other = Tweet.objects.create(id=posted.id + 1, author=author, content="by the ORM", created_at=posted.created_at)
    assert PendingFanout.objects.filter(tweet_id=other.id).exists()
