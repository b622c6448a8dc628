"""A fan-out whose followers are more than ``FANOUT_READ_CHUNK`` reads them a part at a time and
writes each part (in the worker's writer thread) while it reads the next: every cached timeline
gets the tweet, and it is announced and recorded once, as one batch. Followers that turn out more
than one batch holds are delivered in batches, as without the parts."""
import threading

import pytest
from django.test import override_settings

from tests.helpers import cached, page, post
from timelines import store
from timelines.models import PendingFanout

pytestmark = [pytest.mark.django_db(transaction=True)]  # the fan-out starts when the post commits


def _followed_by(make_user, api, n: int):
    author = make_user()
    followers = sorted((make_user() for _ in range(n)), key=lambda user: user.id)
    for follower in followers:
        api(follower).post(f"/v1/users/{author.id}/follow")
        page(api(follower))  # a cached timeline, for the fan-out to write
    page(api(author))
    return author, followers


@override_settings(FANOUT_READ_CHUNK=3, FANOUT_LIVE_FILTER_MIN=2)
def test_followers_read_in_parts_all_get_the_tweet_announced_once_as_one_batch(make_user, api, announced):
    author, followers = _followed_by(make_user, api, 10)  # parts of 3, 3, 3 and 1
    announced.clear()
    tweet_id = post(api(author))
    for user in [*followers, author]:
        assert cached(store.timeline_key(user.id))[0] == tweet_id, user.id
    assert announced == [(int(tweet_id), author.id, 0, None)]
    assert not PendingFanout.objects.filter(tweet_id=tweet_id).exists()
    assert any(thread.name.startswith("fanout-writer") for thread in threading.enumerate())  # the parts' writer


@override_settings(FANOUT_READ_CHUNK=3, FANOUT_BATCH_SIZE=4)
def test_more_followers_than_a_batch_are_delivered_in_batches_each_announced_once(make_user, api, announced):
    author, followers = _followed_by(make_user, api, 9)
    announced.clear()
    tweet_id = post(api(author))
    for user in [*followers, author]:
        assert cached(store.timeline_key(user.id))[0] == tweet_id, user.id
    ids = [f.id for f in followers]
    assert sorted(announced, key=lambda batch: batch[2]) == [
        (int(tweet_id), author.id, 0, ids[3]), (int(tweet_id), author.id, ids[3], ids[7]),
        (int(tweet_id), author.id, ids[7], ids[8])]
    assert not PendingFanout.objects.filter(tweet_id=tweet_id).exists()
