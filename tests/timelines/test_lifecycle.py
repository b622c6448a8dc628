"""The timeline's lifecycle: celebrity pull, threshold crossings, pull-to-refresh,
follow backfill, unfollow removal, the reconciler and forced rebuilds."""
import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from social import services as social_services
from tests.helpers import cached, hold_timeline_tasks, ids, page, post, scroll
from timelines import services, store
from timelines.models import PendingFanout
from tweets import services as tweet_services
from tweets.models import Tweet

pytestmark = pytest.mark.django_db(transaction=True)


def _follow(user, author):
    social_services.follow_create(follower=user, followee_id=author.id)


@override_settings(TIMELINE_CELEBRITY_THRESHOLD=2)
def test_celebrity_tweets_are_pulled_and_merged_in_order(make_user, api, redis):
    celeb, plain, reader, other = make_user(), make_user(), make_user(), make_user()
    for u in (reader, other):
        _follow(u, celeb)
    _follow(reader, plain)
    ids(api(reader))  # cache the reader's timeline
    posted = [post(api(celeb if n % 3 else plain), f"t{n}") for n in range(9)]
    pulled = [t for n, t in enumerate(posted) if n % 3]
    assert set(Tweet.objects.filter(pushed=False).values_list("id", flat=True)) == {int(t) for t in pulled}
    # Only the plain author's tweets were pushed into the reader's list...
    assert cached(store.timeline_key(reader.id)) == [posted[6], posted[3], posted[0], "0"]
    # ...yet the page has everything, in id order, the celebrity's from the pull.
    assert ids(api(reader), limit=100) == posted[::-1]
    assert scroll(api(reader), limit=2) == posted[::-1]
    # The celebrity sees their own tweets, and the other follower only the celebrity's.
    assert ids(api(celeb)) == pulled[::-1]
    assert ids(api(other)) == pulled[::-1]


def test_crossing_the_threshold_either_way_never_drops_or_doubles_a_tweet(make_user, api, redis, settings):
    author, reader, extra = make_user(), make_user(), make_user()
    _follow(reader, author)
    ids(api(reader))
    settings.TIMELINE_CELEBRITY_THRESHOLD = 3
    before = [post(api(author), f"pushed {n}") for n in range(2)]
    _follow(extra, author)
    settings.TIMELINE_CELEBRITY_THRESHOLD = 2  # the author is a celebrity now
    during = [post(api(author), f"pulled {n}") for n in range(2)]
    social_services.follow_delete(follower=extra, followee_id=author.id)  # and no longer
    after = [post(api(author), f"pushed again {n}") for n in range(2)]
    expected = (before + during + after)[::-1]
    assert [Tweet.objects.get(id=t).pushed for t in before + during + after] == [True] * 2 + [False] * 2 + [True] * 2
    assert scroll(api(reader), limit=1) == expected
    # Whatever the cache holds or lost, the answer is the same.
    store.evict(user_id=reader.id)
    assert scroll(api(reader), limit=4) == expected
    redis.delete(store.author_key(author.id))
    assert scroll(api(reader), limit=3) == expected
    assert ids(api(author), limit=10) == expected


@override_settings(TIMELINE_MAX_ENTRIES=3, TIMELINE_TRIM_SLACK=1, TIMELINE_CELEBRITY_THRESHOLD=2)
def test_deep_scrolling_past_every_cached_list_has_no_gap_and_no_repeat(make_user, api):
    reader, fan = make_user(), make_user()
    celebs = [make_user() for _ in range(2)]
    plain = [make_user() for _ in range(2)]
    for a in celebs + plain:
        _follow(reader, a)
    for c in celebs:
        _follow(fan, c)
    ids(api(reader))
    posted = [post(api((celebs + plain)[n % 4]), f"t{n}") for n in range(30)]
    for limit in (1, 2, 3, 5, 8, 100):
        assert scroll(api(reader), limit=limit) == posted[::-1]


@override_settings(TIMELINE_MAX_ENTRIES=4, TIMELINE_TRIM_SLACK=1, TIMELINE_CELEBRITY_THRESHOLD=1)
def test_pull_to_refresh_returns_the_tweets_just_newer_without_gaps(make_user, api):
    reader, celeb, plain = make_user(), make_user(), make_user()
    _follow(reader, plain)
    _follow(reader, celeb)  # one follower is enough to be a celebrity here
    ids(api(reader))
    posted = [post(api(celeb if n % 2 else plain), f"t{n}") for n in range(12)]
    # From the oldest tweet up, three at a time: each page is the next three, newest first.
    since, seen = posted[0], []
    while True:
        body = page(api(reader), since=since, limit=3)
        found = [t["tweet_id"] for t in body["data"]]
        if not found:
            assert body["prev_cursor"] == since
            break
        assert all(int(i) > int(since) for i in found), f"a page not above since={since}"
        assert [int(i) for i in found] == sorted((int(i) for i in found), reverse=True)
        assert body["prev_cursor"] == found[0]
        assert body["next_cursor"] == found[-1]  # older tweets exist: at least `since` itself
        seen = found + seen
        since = body["prev_cursor"]
    assert seen == posted[1:][::-1]
    newest = page(api(reader), since=posted[-1])
    assert newest["data"] == [] and newest["next_cursor"] is None and newest["prev_cursor"] == posted[-1]


@pytest.mark.parametrize("params", [{"since": "abc"}, {"since": "0"}, {"since": "-3"},
                                    {"since": "5", "cursor": "9"}])
def test_bad_since_is_a_400(make_user, api, params):
    r = api(make_user()).get("/v1/timeline/home", params)
    assert r.status_code == 400 and r.json()


def test_a_follow_backfills_the_cached_timeline_and_an_unfollow_removes(make_user, api, redis):
    author, reader, other = make_user(), make_user(), make_user()
    _follow(reader, other)
    mine = post(api(other), "from a followee")
    old = [post(api(author), f"old {n}") for n in range(3)]
    ids(api(reader))
    key = store.timeline_key(reader.id)
    _follow(reader, author)
    # Backfilled in place (no rebuild): the list is there, with the author's tweets.
    assert cached(key) == [*old[::-1], mine, "0"]
    assert ids(api(reader)) == [*old[::-1], mine]
    social_services.follow_delete(follower=reader, followee_id=author.id)
    assert cached(key) == [mine, "0"]
    assert ids(api(reader)) == [mine]
    _follow(reader, author)  # a re-follow brings them back
    assert ids(api(reader)) == [*old[::-1], mine]


@override_settings(TIMELINE_MAX_ENTRIES=3, TIMELINE_TRIM_SLACK=1)
def test_a_backfill_of_a_prolific_author_keeps_the_cached_range_gapless(make_user, api, redis):
    author, reader, other = make_user(), make_user(), make_user()
    _follow(reader, other)
    early = post(api(other), "early")
    prolific = [post(api(author), f"p{n}") for n in range(5)]
    late = post(api(other), "late")
    ids(api(reader))
    _follow(reader, author)
    held = cached(store.timeline_key(reader.id))
    assert "0" not in held and len(held) <= 3  # the author has more than fit: no longer complete
    assert scroll(api(reader), limit=2) == [late, *prolific[::-1], early]


def test_a_tweet_whose_fanout_was_never_sent_is_delivered_by_the_reconciler(make_user, api, monkeypatch, redis):
    from timelines import tasks

    author, reader = make_user(), make_user()
    _follow(reader, author)
    ids(api(reader))

    def broker_down(*args):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.fanout_task, "delay", broker_down)
    tweet_id = post(api(author))  # committed: 201 even though nothing could be sent
    monkeypatch.undo()
    assert cached(store.timeline_key(reader.id)) == ["0"]
    assert PendingFanout.objects.filter(tweet_id=tweet_id).exists()
    assert services.fanout_reconcile() == 0  # not late yet
    assert services.fanout_reconcile(older_than_seconds=0) == 1
    assert cached(store.timeline_key(reader.id)) == [tweet_id, "0"]
    assert not PendingFanout.objects.exists()
    assert services.fanout_reconcile(older_than_seconds=0) == 0


@override_settings(FANOUT_BATCH_SIZE=2)
def test_duplicated_and_reordered_deliveries_keep_one_sorted_copy(make_user, api, redis, monkeypatch):
    author = make_user()
    followers = [make_user() for _ in range(5)]
    for f in followers:
        _follow(f, author)
        ids(api(f))
    sent = hold_timeline_tasks(monkeypatch, [])
    older = tweet_services.tweet_create(author=author, content="older")
    newer = tweet_services.tweet_create(author=author, content="newer")
    assert [args for _, args in sent] == [(older.id,), (newer.id,)]
    # The newer tweet's fan-out runs first, every message twice, batches in reverse.
    for task, args in sent[::-1] * 2:
        task.run(*args)
    batches = sent[2:]
    assert len(batches) == 4  # two more batches of two for each tweet
    for task, args in batches[::-1] + batches:
        task.run(*args)
    for f in followers:
        assert cached(store.timeline_key(f.id)) == [str(newer.id), str(older.id), "0"]
    assert not PendingFanout.objects.exists()


def test_a_deleted_tweet_is_gone_from_every_timeline_and_its_fanout_is_skipped(make_user, api, redis, monkeypatch):
    author, reader = make_user(), make_user()
    _follow(reader, author)
    ids(api(reader))
    sent = hold_timeline_tasks(monkeypatch, [])
    tweet = tweet_services.tweet_create(author=author, content="regret")
    tweet_services.tweet_delete(tweet_id=tweet.id, actor=author)
    for task, args in sent:
        task.run(*args)
    assert cached(store.timeline_key(reader.id)) == ["0"]
    assert not PendingFanout.objects.exists()
    assert ids(api(reader)) == []


def test_flushing_every_key_changes_no_timeline(make_user, api, redis, settings):
    celeb, plain, reader = make_user(), make_user(), make_user()
    for a in (celeb, plain):
        _follow(reader, a)
    settings.TIMELINE_CELEBRITY_THRESHOLD = 1
    ids(api(reader))
    posted = [post(api(celeb if n % 2 else plain), f"t{n}") for n in range(6)]
    before = scroll(api(reader), limit=4)
    keys = list(redis.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}*"))
    redis.delete(*keys)
    assert scroll(api(reader), limit=4) == before == posted[::-1]


@override_settings(TIMELINE_MAX_ENTRIES=3, TIMELINE_TRIM_SLACK=1)
def test_rebuild_command_replaces_cached_timelines(make_user, api, redis, capsys):
    author, reader, idle = make_user(), make_user(), make_user()
    for u in (reader, idle):
        _follow(u, author)
    posted = [post(api(author), f"t{n}") for n in range(4)]
    ids(api(reader))
    key = store.timeline_key(reader.id)
    redis.delete(key)
    redis.rpush(key, "1", "0")  # a corrupted list
    call_command("rebuild_timelines", "--all")
    assert "Rebuilt 1 timeline." in capsys.readouterr().out
    assert cached(key) == posted[:0:-1]
    assert not redis.exists(store.timeline_key(idle.id))  # inactive users stay absent
    call_command("rebuild_timelines", "--user", str(idle.id))
    assert cached(store.timeline_key(idle.id)) == posted[:0:-1]
    with pytest.raises(CommandError, match="No such user"):
        call_command("rebuild_timelines", "--user", "999999999")
