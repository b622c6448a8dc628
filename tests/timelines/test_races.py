"""Races between rebuilds, fan-out and follow changes, forced at the worst moment."""
import pytest
from django.test import override_settings

from social import services as social_services
from tests.helpers import ids
from timelines import rebuilds, store
from timelines import services as tl_services
from tweets import services as tweet_services

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_unfollow_during_a_rebuild_never_leaves_the_unfollowed_tweets_showing(make_user, api, monkeypatch):
    reader, author = make_user(), make_user()
    social_services.follow_create(follower=reader, followee_id=author.id)
    tweet_services.tweet_create(author=author, content="x")
    real = rebuilds.timeline_ids_from_db
    calls = []

    def hooked(**kw):
        ids = real(**kw)
        calls.append(1)
        if len(calls) == 2:  # S2 read done; unfollow commits (and evicts) before merge2
            social_services.follow_delete(follower=reader, followee_id=author.id)
        return ids

    monkeypatch.setattr(rebuilds, "timeline_ids_from_db", hooked)
    ids(api(reader))  # reader's read rebuilds
    monkeypatch.setattr(rebuilds, "timeline_ids_from_db", real)
    # Reader no longer follows author; every later read still shows the tweet.
    assert ids(api(reader)) == [], "unfollowed author's tweet still shown"


def test_a_follow_during_a_rebuild_never_hides_the_new_followee(make_user, api, monkeypatch):
    reader, author = make_user(), make_user()
    t = tweet_services.tweet_create(author=author, content="old tweet of new followee")
    real = rebuilds.timeline_ids_from_db
    calls = []

    def hooked(**kw):
        ids = real(**kw)
        calls.append(1)
        if len(calls) == 2:
            social_services.follow_create(follower=reader, followee_id=author.id)
        return ids

    monkeypatch.setattr(rebuilds, "timeline_ids_from_db", hooked)
    ids(api(reader))
    monkeypatch.setattr(rebuilds, "timeline_ids_from_db", real)
    assert ids(api(reader)) == [str(t.id)], "followee's tweet missing (list closed by sentinel)"


def test_a_fanout_racing_an_unfollow_and_a_rebuild_shows_nothing_unfollowed(make_user, api, monkeypatch):
    reader, author = make_user(), make_user()
    social_services.follow_create(follower=reader, followee_id=author.id)
    ids(api(reader))  # cached
    real_insert = store.insert

    def hooked(*, user_ids, tweet_id):
        # fan-out has read the follower page (reader in it); reader unfollows and reads
        social_services.follow_delete(follower=reader, followee_id=author.id)
        assert ids(api(reader)) == []
        return real_insert(user_ids=user_ids, tweet_id=tweet_id)

    monkeypatch.setattr(store, "insert", hooked)
    tweet_services.tweet_create(author=author, content="x")  # eager fan-out on commit
    monkeypatch.setattr(store, "insert", real_insert)
    assert ids(api(reader)) == [], "tweet of unfollowed author pushed into rebuilt timeline"


@override_settings(FANOUT_BATCH_SIZE=1)
def test_a_batch_that_could_not_be_sent_is_restarted_by_the_reconciler(make_user, api, monkeypatch):
    from timelines import tasks
    from timelines.models import PendingFanout

    author = make_user()
    f1, f2 = make_user(), make_user()
    for f in (f1, f2):
        social_services.follow_create(follower=f, followee_id=author.id)
        ids(api(f))

    def delay(*args):
        raise ConnectionError("broker blip")

    monkeypatch.setattr(tasks.fanout_batch_task, "delay", delay)
    t = tweet_services.tweet_create(author=author, content="x")  # the first batch is written, the second not sent
    monkeypatch.undo()
    assert ids(api(f1)) == [str(t.id)]
    assert ids(api(f2)) == []
    assert PendingFanout.objects.filter(tweet_id=t.id).exists()
    assert tl_services.fanout_reconcile(older_than_seconds=0) == 1
    assert ids(api(f2)) == [str(t.id)]
    assert not PendingFanout.objects.filter(tweet_id=t.id).exists()
