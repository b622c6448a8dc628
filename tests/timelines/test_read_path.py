"""The read path over HTTP: cursors at the ends of a timeline, and what a page costs in queries.

The pages must be right (the other suites scroll them against the truth) and cheap: a cached, complete
timeline costs no query, PostgreSQL is read past the cached range in one query per page, and tweets
hidden at read (a suspended author's) are skipped in growing chunks, not one round trip per page size.
"""
import pytest
from django.test import override_settings

from social import services as social_services
from tests.helpers import page
from timelines import selectors as tl_selectors
from tweets import cache as tweet_cache
from tweets import services as tweet_services

pytestmark = pytest.mark.django_db(transaction=True)


def _ids(body):
    return [t["tweet_id"] for t in body["data"]]


def _followed_author_posts(make_user, api, count):
    """A reader with a cached timeline, then ``count`` tweets by the one author they follow:
    (the reader's client, the author, the tweet ids oldest first)."""
    reader, author = make_user(), make_user()
    social_services.follow_create(follower=reader, followee_id=author.id)
    client = api(reader)
    page(client)
    return client, author, _posts(author, count)


def _posts(author, n):
    return [str(tweet_services.tweet_create(author=author, content=f"t{k}").id) for k in range(n)]


def test_a_refresh_that_reaches_the_oldest_tweet_has_no_next_cursor(make_user, api):
    client, author, posted = _followed_author_posts(make_user, api, 3)
    body = page(client, since=1, limit=5)
    assert _ids(body) == posted[::-1]
    assert body["next_cursor"] is None and body["prev_cursor"] == posted[-1]
    body = page(client, since=1, limit=2)  # the two oldest: still nothing older
    assert _ids(body) == posted[1::-1] and body["next_cursor"] is None
    body = page(client, since=posted[0], limit=1)  # the first tweet is older
    assert _ids(body) == [posted[1]] and body["next_cursor"] == posted[1]


def test_a_warm_page_of_a_whole_cached_timeline_costs_no_query(make_user, api, django_assert_num_queries):
    client, author, posted = _followed_author_posts(make_user, api, 3)
    assert _ids(page(client, limit=20)) == posted[::-1]
    with django_assert_num_queries(0):  # the sentinel says nothing older exists: PostgreSQL is not asked
        body = page(client, limit=20)
    assert _ids(body) == posted[::-1] and body["next_cursor"] is None


@override_settings(TIMELINE_MAX_ENTRIES=3, TIMELINE_TRIM_SLACK=0)
def test_a_page_past_the_cached_range_costs_one_query(make_user, api, django_assert_num_queries):
    client, author, posted = _followed_author_posts(make_user, api, 40)
    cursor = posted[-3]  # the oldest cached id: the page lies wholly below the cached range
    assert _ids(page(client, cursor=cursor, limit=20)) == posted[-4:-24:-1]
    with django_assert_num_queries(1):
        body = page(client, cursor=cursor, limit=20)
    assert _ids(body) == posted[-4:-24:-1] and body["next_cursor"] == posted[-23]


def test_tweets_hidden_at_read_are_skipped_in_growing_chunks(make_user, api, django_assert_max_num_queries):
    reader, hidden, shown = make_user(), make_user(), make_user()
    for author in (hidden, shown):
        social_services.follow_create(follower=reader, followee_id=author.id)
    client = api(reader)
    page(client)
    old = _posts(shown, 1)
    posted = _posts(hidden, 60)
    social_services.user_suspend(user_id=hidden.id)
    tweet_cache.evict([int(t) for t in old + posted])
    # The 60 hidden tweets are still in the cached list: 6, 12, 24 and 48 ids at a time, one tweet-cache
    # fill each, not ten chunks of 6.
    with django_assert_max_num_queries(6):
        body = page(client, cursor=posted[-1], limit=5)
    assert _ids(body) == old and body["next_cursor"] is None


def _delete_from_the_first_database_chunk(monkeypatch, author, count):
    """Between the first PostgreSQL read of a page and its hydration, ``count`` of the ids read are deleted."""
    real = tl_selectors.timeline_ids_from_db
    fired = []

    def hooked(**kw):
        out = real(**kw)
        if not fired and len(out) >= count:
            fired.append(out[:count])
            for tweet_id in out[:count]:
                tweet_services.tweet_delete(tweet_id=tweet_id, actor=author)
        return out

    monkeypatch.setattr(tl_selectors, "timeline_ids_from_db", hooked)
    return fired


@override_settings(TIMELINE_MAX_ENTRIES=3, TIMELINE_TRIM_SLACK=0)
def test_a_database_page_thinned_by_deletes_continues_below_the_last_id_read(make_user, api, monkeypatch):
    # Cached: the newest 3; the page below them comes from PostgreSQL.
    client, author, posted = _followed_author_posts(make_user, api, 12)
    fired = _delete_from_the_first_database_chunk(monkeypatch, author, 2)
    body = page(client, cursor=posted[9], limit=4)
    assert fired == [[int(posted[8]), int(posted[7])]]
    assert _ids(body) == [posted[6], posted[5], posted[4], posted[3]] and body["next_cursor"] == posted[3]


@override_settings(TIMELINE_MAX_ENTRIES=3, TIMELINE_TRIM_SLACK=0)
def test_a_last_database_page_thinned_by_a_delete_has_no_next_cursor(make_user, api, monkeypatch):
    client, author, posted = _followed_author_posts(make_user, api, 10)
    fired = _delete_from_the_first_database_chunk(monkeypatch, author, 1)
    body = page(client, cursor=posted[7], limit=6)  # 7 ids below the cursor: exactly the first chunk
    assert fired == [[int(posted[6])]]
    assert _ids(body) == posted[5::-1] and body["next_cursor"] is None


@override_settings(TIMELINE_MAX_ENTRIES=3, TIMELINE_TRIM_SLACK=0)
def test_a_refresh_thinned_by_deletes_continues_above_the_last_id_read(make_user, api, monkeypatch):
    client, author, posted = _followed_author_posts(make_user, api, 12)
    fired = _delete_from_the_first_database_chunk(monkeypatch, author, 2)
    body = page(client, since=posted[0], limit=4)  # the oldest first from PostgreSQL, below the cached 3
    assert fired == [[int(posted[1]), int(posted[2])]]
    assert _ids(body) == [posted[6], posted[5], posted[4], posted[3]] and body["prev_cursor"] == posted[6]


@override_settings(TIMELINE_MAX_ENTRIES=3, TIMELINE_TRIM_SLACK=0)
def test_a_refresh_from_below_the_cached_range_shows_each_tweet_once(make_user, api):
    client, author, posted = _followed_author_posts(make_user, api, 10)
    body = page(client, since=posted[0], limit=20)  # PostgreSQL up to the cached range, then the cache
    assert _ids(body) == posted[:0:-1]
    assert body["prev_cursor"] == posted[-1] and body["next_cursor"] == posted[1]
