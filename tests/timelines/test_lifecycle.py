"""The timeline's lifecycle: celebrity pull, threshold crossings, pull-to-refresh,
follow backfill, unfollow removal, the reconciler and forced rebuilds."""
import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from social import services as social_services
from tests.helpers import hold_timeline_tasks
from timelines import services, store
from timelines.models import PendingFanout
from tweets import services as tweet_services
from tweets.models import Tweet

pytestmark = pytest.mark.django_db(transaction=True)


def _post(client, content="hello"):
    r = client.post("/v1/tweets", {"content": content}, format="json")
    assert r.status_code == 201, r.content
    return r.json()["tweet_id"]


def _page(client, **params):
    r = client.get("/v1/timeline/home", params)
    assert r.status_code == 200, r.content
    return r.json()


def _ids(client, **params):
    return [t["tweet_id"] for t in _page(client, **params)["data"]]


def _scroll(client, limit):
    """Every tweet id from the first page to the last, checking each page."""
    seen, cursor = [], None
    while True:
        body = _page(client, limit=limit, **({"cursor": cursor} if cursor else {}))
        ids = [t["tweet_id"] for t in body["data"]]
        assert [int(i) for i in ids] == sorted((int(i) for i in ids), reverse=True)
        # Each page lies below its cursor, so a scroll always moves on (and ends).
        assert cursor is None or all(int(i) < int(cursor) for i in ids), f"a page not below cursor={cursor}"
        seen += ids
        if body["next_cursor"] is None:
            assert len(seen) == len(set(seen)), "a tweet came twice"
            return seen
        assert ids and body["next_cursor"] == ids[-1]
        cursor = body["next_cursor"]


def _cached(redis, key):
    return [x.decode() for x in redis.lrange(key, 0, -1)]


def _follow(user, author):
    social_services.follow_create(follower=user, followee_id=author.id)


@override_settings(TIMELINE_CELEBRITY_THRESHOLD=2)
def test_celebrity_tweets_are_pulled_and_merged_in_order(make_user, api, redis):
    celeb, plain, reader, other = make_user(), make_user(), make_user(), make_user()
    for u in (reader, other):
        _follow(u, celeb)
    _follow(reader, plain)
    _ids(api(reader))  # cache the reader's timeline
    posted = [_post(api(celeb if n % 3 else plain), f"t{n}") for n in range(9)]
    pulled = [t for n, t in enumerate(posted) if n % 3]
    assert set(Tweet.objects.filter(pushed=False).values_list("id", flat=True)) == {int(t) for t in pulled}
    # Only the plain author's tweets were pushed into the reader's list...
    assert _cached(redis, store.timeline_key(reader.id)) == [posted[6], posted[3], posted[0], "0"]
    # ...yet the page has everything, in id order, the celebrity's from the pull.
    assert _ids(api(reader), limit=100) == posted[::-1]
    assert _scroll(api(reader), limit=2) == posted[::-1]
    # The celebrity sees their own tweets, and the other follower only the celebrity's.
    assert _ids(api(celeb)) == pulled[::-1]
    assert _ids(api(other)) == pulled[::-1]


def test_crossing_the_threshold_either_way_never_drops_or_doubles_a_tweet(make_user, api, redis, settings):
    author, reader, extra = make_user(), make_user(), make_user()
    _follow(reader, author)
    _ids(api(reader))
    settings.TIMELINE_CELEBRITY_THRESHOLD = 3
    before = [_post(api(author), f"pushed {n}") for n in range(2)]
    _follow(extra, author)
    settings.TIMELINE_CELEBRITY_THRESHOLD = 2  # the author is a celebrity now
    during = [_post(api(author), f"pulled {n}") for n in range(2)]
    social_services.follow_delete(follower=extra, followee_id=author.id)  # and no longer
    after = [_post(api(author), f"pushed again {n}") for n in range(2)]
    expected = (before + during + after)[::-1]
    assert [Tweet.objects.get(id=t).pushed for t in before + during + after] == [True] * 2 + [False] * 2 + [True] * 2
    assert _scroll(api(reader), limit=1) == expected
    # Whatever the cache holds or lost, the answer is the same.
    store.evict(user_id=reader.id)
    assert _scroll(api(reader), limit=4) == expected
    redis.delete(store.author_key(author.id))
    assert _scroll(api(reader), limit=3) == expected
    assert _ids(api(author), limit=10) == expected


@override_settings(TIMELINE_MAX_ENTRIES=3, TIMELINE_TRIM_SLACK=1, TIMELINE_CELEBRITY_THRESHOLD=2)
def test_deep_scrolling_past_every_cached_list_has_no_gap_and_no_repeat(make_user, api):
    reader, fan = make_user(), make_user()
    celebs = [make_user() for _ in range(2)]
    plain = [make_user() for _ in range(2)]
    for a in celebs + plain:
        _follow(reader, a)
    for c in celebs:
        _follow(fan, c)
    _ids(api(reader))
    posted = [_post(api((celebs + plain)[n % 4]), f"t{n}") for n in range(30)]
    for limit in (1, 2, 3, 5, 8, 100):
        assert _scroll(api(reader), limit=limit) == posted[::-1]


@override_settings(TIMELINE_MAX_ENTRIES=4, TIMELINE_TRIM_SLACK=1, TIMELINE_CELEBRITY_THRESHOLD=1)
def test_pull_to_refresh_returns_the_tweets_just_newer_without_gaps(make_user, api):
    reader, celeb, plain = make_user(), make_user(), make_user()
    _follow(reader, plain)
    _follow(reader, celeb)  # one follower is enough to be a celebrity here
    _ids(api(reader))
    posted = [_post(api(celeb if n % 2 else plain), f"t{n}") for n in range(12)]
    # From the oldest tweet up, three at a time: each page is the next three, newest first.
    since, seen = posted[0], []
    while True:
        body = _page(api(reader), since=since, limit=3)
        ids = [t["tweet_id"] for t in body["data"]]
        if not ids:
            assert body["prev_cursor"] == since
            break
        assert all(int(i) > int(since) for i in ids), f"a page not above since={since}"
        assert [int(i) for i in ids] == sorted((int(i) for i in ids), reverse=True)
        assert body["prev_cursor"] == ids[0]
        assert body["next_cursor"] == ids[-1]  # older tweets exist: at least `since` itself
        seen = ids + seen
        since = body["prev_cursor"]
    assert seen == posted[1:][::-1]
    newest = _page(api(reader), since=posted[-1])
    assert newest["data"] == [] and newest["next_cursor"] is None and newest["prev_cursor"] == posted[-1]


@pytest.mark.parametrize("params", [{"since": "abc"}, {"since": "0"}, {"since": "-3"},
                                    {"since": "5", "cursor": "9"}])
def test_bad_since_is_a_400(make_user, api, params):
    r = api(make_user()).get("/v1/timeline/home", params)
    assert r.status_code == 400 and r.json()


def test_a_follow_backfills_the_cached_timeline_and_an_unfollow_removes(make_user, api, redis):
    author, reader, other = make_user(), make_user(), make_user()
    _follow(reader, other)
    mine = _post(api(other), "from a followee")
    old = [_post(api(author), f"old {n}") for n in range(3)]
    _ids(api(reader))
    key = store.timeline_key(reader.id)
    _follow(reader, author)
    # Backfilled in place (no rebuild): the list is there, with the author's tweets.
    assert _cached(redis, key) == [*old[::-1], mine, "0"]
    assert _ids(api(reader)) == [*old[::-1], mine]
    social_services.follow_delete(follower=reader, followee_id=author.id)
    assert _cached(redis, key) == [mine, "0"]
    assert _ids(api(reader)) == [mine]
    _follow(reader, author)  # a re-follow brings them back
    assert _ids(api(reader)) == [*old[::-1], mine]


@override_settings(TIMELINE_MAX_ENTRIES=3, TIMELINE_TRIM_SLACK=1)
def test_a_backfill_of_a_prolific_author_keeps_the_cached_range_gapless(make_user, api, redis):
    author, reader, other = make_user(), make_user(), make_user()
    _follow(reader, other)
    early = _post(api(other), "early")
    prolific = [_post(api(author), f"p{n}") for n in range(5)]
    late = _post(api(other), "late")
    _ids(api(reader))
    _follow(reader, author)
    cached = _cached(redis, store.timeline_key(reader.id))
    assert "0" not in cached and len(cached) <= 3  # the author has more than fit: no longer complete
    assert _scroll(api(reader), limit=2) == [late, *prolific[::-1], early]


def test_a_tweet_whose_fanout_was_never_sent_is_delivered_by_the_reconciler(make_user, api, monkeypatch, redis):
    from timelines import tasks

    author, reader = make_user(), make_user()
    _follow(reader, author)
    _ids(api(reader))

    def broker_down(*args):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.fanout_task, "delay", broker_down)
    tweet_id = _post(api(author))  # committed: 201 even though nothing could be sent
    monkeypatch.undo()
    assert _cached(redis, store.timeline_key(reader.id)) == ["0"]
    assert PendingFanout.objects.filter(tweet_id=tweet_id).exists()
    assert services.fanout_reconcile() == 0  # not late yet
    assert services.fanout_reconcile(older_than_seconds=0) == 1
    assert _cached(redis, store.timeline_key(reader.id)) == [tweet_id, "0"]
    assert not PendingFanout.objects.exists()
    assert services.fanout_reconcile(older_than_seconds=0) == 0


@override_settings(FANOUT_BATCH_SIZE=2)
def test_duplicated_and_reordered_deliveries_keep_one_sorted_copy(make_user, api, redis, monkeypatch):
    author = make_user()
    followers = [make_user() for _ in range(5)]
    for f in followers:
        _follow(f, author)
        _ids(api(f))
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
        assert _cached(redis, store.timeline_key(f.id)) == [str(newer.id), str(older.id), "0"]
    assert not PendingFanout.objects.exists()


def test_a_deleted_tweet_is_gone_from_every_timeline_and_its_fanout_is_skipped(make_user, api, redis, monkeypatch):
    author, reader = make_user(), make_user()
    _follow(reader, author)
    _ids(api(reader))
    sent = hold_timeline_tasks(monkeypatch, [])
    tweet = tweet_services.tweet_create(author=author, content="regret")
    tweet_services.tweet_delete(tweet_id=tweet.id, actor=author)
    for task, args in sent:
        task.run(*args)
    assert _cached(redis, store.timeline_key(reader.id)) == ["0"]
    assert not PendingFanout.objects.exists()
    assert _ids(api(reader)) == []


def test_flushing_every_key_changes_no_timeline(make_user, api, redis, settings):
    celeb, plain, reader = make_user(), make_user(), make_user()
    for a in (celeb, plain):
        _follow(reader, a)
    settings.TIMELINE_CELEBRITY_THRESHOLD = 1
    _ids(api(reader))
    posted = [_post(api(celeb if n % 2 else plain), f"t{n}") for n in range(6)]
    before = _scroll(api(reader), limit=4)
    keys = list(redis.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}*"))
    redis.delete(*keys)
    assert _scroll(api(reader), limit=4) == before == posted[::-1]


@override_settings(TIMELINE_MAX_ENTRIES=3, TIMELINE_TRIM_SLACK=1)
def test_rebuild_command_replaces_cached_timelines(make_user, api, redis, capsys):
    author, reader, idle = make_user(), make_user(), make_user()
    for u in (reader, idle):
        _follow(u, author)
    posted = [_post(api(author), f"t{n}") for n in range(4)]
    _ids(api(reader))
    key = store.timeline_key(reader.id)
    redis.delete(key)
    redis.rpush(key, "1", "0")  # a corrupted list
    call_command("rebuild_timelines", "--all")
    assert "Rebuilt 1 timeline." in capsys.readouterr().out
    assert _cached(redis, key) == posted[:0:-1]
    assert not redis.exists(store.timeline_key(idle.id))  # inactive users stay absent
    call_command("rebuild_timelines", "--user", str(idle.id))
    assert _cached(redis, store.timeline_key(idle.id)) == posted[:0:-1]
    with pytest.raises(CommandError, match="No such user"):
        call_command("rebuild_timelines", "--user", "999999999")
