"""The live-timeline bitmaps: a large fan-out addresses only the followers who may have a
cached timeline, and never skips one who has."""
import time

import pytest
from django.core.management import call_command
from django.test import override_settings

from social import services as social_services
from tests.helpers import cached, ids, page
from timelines import services, store
from timelines.rebuilds import timeline_rebuild
from timelines.signals import fanout_batch_done
from timelines.store import live
from tweets import services as tweet_services

PERIOD = 14 * 24 * 3600  # TIMELINE_INACTIVE_DAYS' default, in seconds


def _at(monkeypatch, seconds: float) -> None:
    monkeypatch.setattr(live.time, "time", lambda: seconds)


def test_every_follower_is_kept_until_the_cached_timelines_are_indexed(redis):
    for uid in (5, 9):  # cached before anything marked them
        store.merge(user_id=uid, ids=[], complete=True, generation=0)
    assert store.live_only(user_ids=list(range(1, 21))) == list(range(1, 21))
    assert store.index_live() == 2
    assert store.live_only(user_ids=list(range(1, 21))) == [5, 9]
    assert store.index_live() is None  # done once


@pytest.mark.django_db
def test_a_read_and_a_rebuild_mark_their_user(redis):
    store.index_live()
    store.read(user_id=12)  # a miss, yet the reader is about to have one
    timeline_rebuild(user_id=30, generation=store.generation(user_id=30))
    assert store.live_only(user_ids=[11, 12, 13, 29, 30, 31]) == [12, 30]


def test_a_mark_counts_until_its_timeline_may_have_expired(redis, monkeypatch):
    start = time.time() // PERIOD * PERIOD + PERIOD // 2  # mid-period (the bitmaps expire by the real clock)
    _at(monkeypatch, start)
    store.index_live()
    store.mark_live(user_ids=[7])
    _at(monkeypatch, start + PERIOD)  # the next period: the timeline may still be cached
    assert store.live_only(user_ids=[6, 7, 8]) == [7]
    _at(monkeypatch, start - PERIOD)  # a writer whose clock is a period behind the reader's
    assert store.live_only(user_ids=[6, 7, 8]) == [7]
    _at(monkeypatch, start + 2 * PERIOD)  # idle longer than TIMELINE_INACTIVE_DAYS: expired
    assert store.live_only(user_ids=[6, 7, 8]) == []


def test_users_past_the_bytes_read_are_kept(redis):
    store.index_live()
    store.mark_live(user_ids=[3, 1000])
    # Two users asked about: 16 bytes (ids below 128) of a 126-byte bitmap are read.
    assert store.live_only(user_ids=[3, 10]) == [3]
    assert store.live_only(user_ids=[10, 500]) == [500]  # unknown, so addressed: the script looks


def test_another_period_length_is_indexed_again(redis, settings):
    store.index_live()
    settings.TIMELINE_INACTIVE_DAYS = 7
    assert store.live_only(user_ids=[1, 2]) == [1, 2]
    assert store.index_live() == 0


# Ids from 1: the filter reads 8 bytes of each bitmap per follower (ids below 192 for these 3) and
# addresses the followers past them as before, which in a long test run would be all of them.
@pytest.mark.django_db(transaction=True, reset_sequences=True)
@override_settings(FANOUT_LIVE_FILTER_MIN=1)
def test_a_filtered_fanout_reaches_every_cached_timeline_and_addresses_no_other(make_user, api, redis):
    author = make_user()
    reading, rebuilt, idle = make_user(), make_user(), make_user()
    for user in (reading, rebuilt, idle):
        social_services.follow_create(follower=user, followee_id=author.id)
    page(api(author))
    page(api(reading))  # cached by a read
    assert services.fanout_reconcile() == 0  # the reconciler indexes the cached timelines: the filter is on
    call_command("rebuild_timelines", "--user", str(rebuilt.id))  # cached by an operator, never read
    batches = []

    def done(sender, **batch):
        batches.append(batch)

    fanout_batch_done.connect(done)
    try:
        tweet = tweet_services.tweet_create(author=author, content="to the live ones")
    finally:
        fanout_batch_done.disconnect(done)
    for user in (author, reading, rebuilt):
        assert cached(store.timeline_key(user.id))[0] == str(tweet.id)
    assert not redis.exists(store.timeline_key(idle.id))
    [batch] = batches  # the whole fan-out in one batch: the author's own and the two cached followers'
    assert (batch["tweet_id"], batch["followers"], batch["addressed"], batch["written"], batch["last"]) == (
        tweet.id, 3, 3, 3, True)
    assert ids(api(idle)) == [str(tweet.id)]  # a first read finds it all the same
