"""The home timeline over HTTP: push, rebuild, scrolling, deletes, bad input, query cost."""
import uuid

import pytest
from django.test import override_settings

from core import redis as core_redis
from social import cache as author_cache
from social import services as social_services
from tests.helpers import cached, post, redis_round_trips, scroll, scroll_pages
from timelines import store
from tweets import cache as tweet_cache

pytestmark = pytest.mark.django_db(transaction=True)


def test_followers_see_new_tweets_newest_first_with_their_own(make_user, api):
    alice, bob, carol = make_user(), make_user(), make_user()
    api(bob).post(f"/v1/users/{alice.id}/follow")
    api(bob).post(f"/v1/users/{carol.id}/follow")
    assert api(bob).get("/v1/timeline/home").json() == {"data": [], "next_cursor": None, "prev_cursor": None}
    posted = [post(api(alice), "a1"), post(api(carol), "c1"), post(api(bob), "b1"), post(api(alice), "a2")]
    body = api(bob).get("/v1/timeline/home").json()
    assert [t["tweet_id"] for t in body["data"]] == posted[::-1]
    assert body["prev_cursor"] == posted[-1] and body["next_cursor"] is None
    assert body["data"][0]["author"]["username"] == alice.username
    # Carol follows nobody: she sees only her own tweet.
    assert [t["tweet_id"] for t in api(carol).get("/v1/timeline/home").json()["data"]] == [posted[1]]


def test_scrolling_returns_every_tweet_exactly_once(make_user, api):
    reader = make_user()
    authors = [make_user() for _ in range(3)]
    for a in authors:
        api(reader).post(f"/v1/users/{a.id}/follow")
    posted = [post(api(authors[n % 3]), f"t{n}") for n in range(47)]
    for limit in (1, 5, 20, 47, 100):
        pages = scroll_pages(api(reader), limit=limit)
        assert [tweet_id for one in pages for tweet_id in one] == posted[::-1]
        assert len(pages) == max(1, -(-47 // limit))


def test_fanout_writes_only_live_timelines_and_a_read_rebuilds(make_user, api, redis):
    author, reader = make_user(), make_user()
    api(reader).post(f"/v1/users/{author.id}/follow")
    first = post(api(author))
    assert not redis.exists(store.timeline_key(reader.id))  # never read: never created by fan-out
    assert [t["tweet_id"] for t in api(reader).get("/v1/timeline/home").json()["data"]] == [first]
    assert redis.exists(store.timeline_key(reader.id))
    second = post(api(author))
    assert redis.lindex(store.timeline_key(reader.id), 0).decode() == second  # pushed
    store.evict(user_id=reader.id)
    tweet_cache.evict([int(first), int(second)])
    assert [t["tweet_id"] for t in api(reader).get("/v1/timeline/home").json()["data"]] == [second, first]


def test_deleted_tweets_disappear_from_timelines(make_user, api):
    author, reader = make_user(), make_user()
    api(reader).post(f"/v1/users/{author.id}/follow")
    ids = [post(api(author), f"t{n}") for n in range(5)]
    api(reader).get("/v1/timeline/home")
    assert api(author).delete(f"/v1/tweets/{ids[2]}").status_code == 204
    seen = scroll(api(reader), limit=2)
    assert seen == [ids[4], ids[3], ids[1], ids[0]]


def test_follow_and_unfollow_change_what_is_shown(make_user, api):
    author, reader = make_user(), make_user()
    old = post(api(author), "before the follow")
    api(reader).get("/v1/timeline/home")  # reader's timeline is cached, and empty
    api(reader).post(f"/v1/users/{author.id}/follow")
    assert [t["tweet_id"] for t in api(reader).get("/v1/timeline/home").json()["data"]] == [old]
    api(reader).delete(f"/v1/users/{author.id}/follow")
    assert api(reader).get("/v1/timeline/home").json()["data"] == []


def test_suspended_authors_tweets_stop_appearing(make_user, api):
    author, reader = make_user(), make_user()
    api(reader).post(f"/v1/users/{author.id}/follow")
    post(api(author))
    assert len(api(reader).get("/v1/timeline/home").json()["data"]) == 1
    social_services.user_suspend(user_id=author.id)
    assert api(reader).get("/v1/timeline/home").json()["data"] == []


@override_settings(TIMELINE_MAX_ENTRIES=10, TIMELINE_TRIM_SLACK=3)
def test_scrolling_continues_past_the_cached_entries_from_postgres(make_user, api, redis):
    reader = make_user()
    authors = [make_user() for _ in range(2)]
    for a in authors:
        api(reader).post(f"/v1/users/{a.id}/follow")
    api(reader).get("/v1/timeline/home")
    posted = [post(api(authors[n % 2]), f"t{n}") for n in range(33)]
    assert redis.llen(store.timeline_key(reader.id)) <= 13
    for limit in (3, 7, 10, 11, 40):
        seen = scroll(api(reader), limit=limit)
        assert seen == posted[::-1]


@override_settings(FANOUT_BATCH_SIZE=3)
def test_a_fanout_larger_than_a_batch_reaches_every_follower(make_user, api, redis):
    author = make_user()
    followers = [make_user() for _ in range(10)]
    for f in followers:
        api(f).post(f"/v1/users/{author.id}/follow")
        api(f).get("/v1/timeline/home")
    tweet_id = post(api(author))
    for f in followers:
        assert cached(store.timeline_key(f.id)) == [tweet_id, "0"]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": "abc"}, {"limit": -1},
                                    {"limit": "1.5"}, {"cursor": "abc"}, {"cursor": "-5"}, {"cursor": "0"},
                                    {"cursor": "99999999999999999999"}, {"cursor": "1e5"}])
def test_bad_limit_or_cursor_is_a_400(make_user, api, params):
    r = api(make_user()).get("/v1/timeline/home", params)
    assert r.status_code == 400
    assert set(r.json()) <= {"limit", "cursor"}


def test_the_timeline_needs_a_token(anon):
    assert anon.get("/v1/timeline/home").status_code == 401


@pytest.mark.parametrize("limit", [5, 100])
def test_a_page_costs_a_bounded_number_of_queries(make_user, api, django_assert_max_num_queries, limit):
    reader = make_user()
    authors = [make_user() for _ in range(5)]
    for a in authors:
        api(reader).post(f"/v1/users/{a.id}/follow")
    posted = [int(post(api(authors[n % 5]), f"t{n}")) for n in range(120)]
    client = api(reader)
    # Cold: no timeline, followees, tweet or author cached. Followees, 2 rebuild
    # reads, 1 tweet fill, 1 author fill (the reader's own summary is cached).
    store.generation_advance(user_id=reader.id, drop_timeline=True)
    tweet_cache.evict(posted)
    for a in authors:
        author_cache.evict(a.id)
    with django_assert_max_num_queries(6):
        assert len(client.get("/v1/timeline/home", {"limit": limit}).json()["data"]) == limit
    with django_assert_max_num_queries(0):  # warm: the reader is authenticated from the author cache
        assert len(client.get("/v1/timeline/home", {"limit": limit}).json()["data"]) == limit



@pytest.mark.parametrize("case", ["no celebrity", "a celebrity followed", "a celebrity's tweet on the page",
                                  "a celebrity's tweet posted since"])
def test_a_warm_page_costs_one_redis_round_trip_and_one_more_to_read_pulled_lists_again(
        make_user, api, monkeypatch, case, django_assert_num_queries):
    reader, author, celebrity, fan = make_user(), make_user(), make_user(), make_user()
    api(reader).post(f"/v1/users/{author.id}/follow")
    if case != "no celebrity":
        for user in (reader, fan):
            api(user).post(f"/v1/users/{celebrity.id}/follow")
    limit = 1 if case == "a celebrity followed" else 20
    with override_settings(TIMELINE_CELEBRITY_THRESHOLD=2):  # the celebrity's 2 followers make their tweets pulled
        pulled = [int(post(api(celebrity), "pulled"))] if case != "no celebrity" else []
        pushed = [int(post(api(author), f"pushed {n}")) for n in range(2)][::-1]
        client = api(reader)
        for _ in range(2):  # warms every cache; the second read keeps the celebrity's list the first rebuilt
            client.get("/v1/timeline/home", {"limit": limit})
        if case == "a celebrity's tweet posted since":
            pulled.insert(0, int(post(api(celebrity), "pulled since")))
        sent = redis_round_trips(monkeypatch)
        with django_assert_num_queries(0):
            page = client.get("/v1/timeline/home", {"limit": limit}).json()["data"]
    assert [int(t["tweet_id"]) for t in page] == sorted(pushed + pulled, reverse=True)[:limit]
    # One round trip for the reader's authentication, the rate limit, the cached timeline and, on one server,
    # the entries of the page's tweets, pulled ones included, which carry their authors. The web process
    # keeps the celebrities' lists it read as long as no pulled list was written since (the first trip says);
    # after a celebrity's post it reads them again, in a second trip. On a Redis Cluster the first trip reads
    # no tweet: the pushed ones come in the second, the pulled ones after a post in a third, and each trip
    # is sent to the nodes of its keys side by side.
    window = sorted(pushed + pulled, reverse=True)[:limit + 1]  # the page and one more: are there older tweets?
    trips = [[store.timeline_key(reader.id), store.keys.pull_epoch_key(), author_cache._key(reader.id)]]
    if not core_redis.is_cluster():
        if case == "a celebrity's tweet posted since":
            trips.append([store.author_key(celebrity.id)])
    elif case == "a celebrity's tweet posted since":
        trips += [[store.author_key(celebrity.id)] + [tweet_cache._key(t) for t in window if t in pushed],
                  [tweet_cache._key(t) for t in window if t in pulled]]
    else:
        trips.append([tweet_cache._key(t) for t in window])
    assert len(sent) == sum(_nodes(keys) for keys in trips)


def test_a_pulled_list_read_from_the_processs_copy_has_its_ttl_refreshed_once_a_minute(make_user, api, redis,
                                                                                        monkeypatch):
    from timelines.store import process_cache

    reader, author, celebrity, fan = make_user(), make_user(), make_user(), make_user()
    for followee in (author, celebrity):
        api(reader).post(f"/v1/users/{followee.id}/follow")
    api(fan).post(f"/v1/users/{celebrity.id}/follow")
    with override_settings(TIMELINE_CELEBRITY_THRESHOLD=2):
        post(api(celebrity), "pulled")
        post(api(author), "pushed")
        client = api(reader)
        for _ in range(2):  # the first read rebuilds the celebrity's list, the second keeps a copy of it
            client.get("/v1/timeline/home")
        key = store.author_key(celebrity.id)
        redis.expire(key, 100)
        client.get("/v1/timeline/home")  # from the copy, refreshed within the minute: left as it is
        assert 0 < redis.ttl(key) <= 100
        monkeypatch.setattr(process_cache, "TOUCH_EVERY", 0.0)  # as a minute later
        client.get("/v1/timeline/home")
        assert redis.ttl(key) > 100


def test_a_server_that_does_not_know_the_head_script_answers_the_page_and_learns_it(make_user, api, monkeypatch):
    if core_redis.is_cluster():
        pytest.skip("a cluster's first round trip reads no tweet")
    from timelines.store import reads

    reader, author = make_user(), make_user()
    api(reader).post(f"/v1/users/{author.id}/follow")
    posted = [post(api(author), f"t{n}") for n in range(3)]
    client = api(reader)
    client.get("/v1/timeline/home")
    # A script of the same text under a name the server never saw (a name no earlier run loaded on this
    # shared server either): as after a restart that lost its scripts.
    monkeypatch.setattr(reads, "_HEAD", core_redis.Script(reads._HEAD.source + f"\n-- {uuid.uuid4().hex}"))
    sent = redis_round_trips(monkeypatch)
    assert [t["tweet_id"] for t in client.get("/v1/timeline/home").json()["data"]] == posted[::-1]
    assert len(sent) > 1  # the page was read again, and the script loaded
    del sent[:]
    assert [t["tweet_id"] for t in client.get("/v1/timeline/home").json()["data"]] == posted[::-1]
    assert len(sent) == 1


def _nodes(keys: list[str]) -> int:
    """How many servers a round trip reading ``keys`` is sent to."""
    if not core_redis.is_cluster():
        return 1
    client = core_redis.connection()
    return len({client.get_node_from_key(key).name for key in keys})
