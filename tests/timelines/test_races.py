"""Races between rebuilds, fan-out and follow changes, forced at the worst moment."""
import io

import pytest
from django.core.management import call_command
from django.test import override_settings

from social import services as social_services
from tests.helpers import cached, ids
from timelines import rebuilds, store
from timelines import services as tl_services
from tweets import services as tweet_services

pytestmark = pytest.mark.django_db(transaction=True)


def _unfollow_after_read(reader, author, *, on_read: int):
    """A stand-in for the rebuild's PostgreSQL read that lets ``reader`` unfollow ``author``
    (committed, and the cached timeline updated) right after read number ``on_read``."""
    real, reads = rebuilds.timeline_ids_from_db, []

    def read_then_unfollow(**kw):
        found = real(**kw)
        reads.append(found)
        if len(reads) == on_read:
            social_services.follow_delete(follower=reader, followee_id=author.id)
        return found

    return read_then_unfollow


def test_an_unfollow_during_a_rebuild_never_leaves_the_unfollowed_tweets_cached(make_user, api, monkeypatch):
    reader, author = make_user(), make_user()
    social_services.follow_create(follower=reader, followee_id=author.id)
    tweet = tweet_services.tweet_create(author=author, content="x")
    # The second read (made once the list exists) still sees the tweet; the unfollow
    # then removes it from the list, so writing that read would put it back.
    monkeypatch.setattr(rebuilds, "timeline_ids_from_db", _unfollow_after_read(reader, author, on_read=2))
    ids(api(reader))  # the reader's read rebuilds
    monkeypatch.undo()
    assert str(tweet.id) not in cached(store.timeline_key(reader.id)), "a stale read was merged after the unfollow"
    assert ids(api(reader)) == [], "unfollowed author's tweet still shown"


def test_an_unfollow_during_a_forced_rebuild_is_not_undone(make_user, api, monkeypatch):
    reader, author = make_user(), make_user()
    social_services.follow_create(follower=reader, followee_id=author.id)
    tweet = tweet_services.tweet_create(author=author, content="x")
    assert ids(api(reader)) == [str(tweet.id)]
    # The forced rebuild read the tweet, then the unfollow removed it: replacing the
    # list with that read would bring it back.
    monkeypatch.setattr(rebuilds, "timeline_ids_from_db", _unfollow_after_read(reader, author, on_read=1))
    call_command("rebuild_timelines", "--user", str(reader.id), stdout=io.StringIO(), stderr=io.StringIO())
    monkeypatch.undo()
    assert cached(store.timeline_key(reader.id)) == ["0"]
    assert ids(api(reader)) == []


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
    assert cached(store.timeline_key(reader.id)) == [str(t.id), "0"], "followee's tweet missing from the list"
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
