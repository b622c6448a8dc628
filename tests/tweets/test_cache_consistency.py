"""Caches that must never outlive the change they cache, and cursors that must stay exact."""
import threading

import orjson
import pytest
from django.db import transaction
from django.test import override_settings

from social import cache as author_cache
from social import services as social_services
from social.models import User
from tests.helpers import page
from timelines import selectors as tl_selectors
from tweets import cache as tweet_cache
from tweets import objects as tweet_objects
from tweets import services as tweet_services
from tweets import snowflake

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_profile_read_before_an_update_never_overwrites_it_in_the_cache(make_user, api, monkeypatch):
    reader, author = make_user(), make_user(display_name="Old")
    social_services.follow_create(follower=reader, followee_id=author.id)
    tweet_services.tweet_create(author=author, content="x")
    author_cache.evict_many({author.id, reader.id})  # the follow cached both (their counts changed)
    real = author_cache.entry_of
    fired = []

    def hooked(user):
        entry = real(user)  # reader has read the old row from PostgreSQL
        if not fired:
            fired.append(1)
            social_services.user_update(user=User.objects.get(id=author.id), display_name="New")  # commit+evict
        return entry

    monkeypatch.setattr(author_cache, "entry_of", hooked)
    page(api(reader))
    monkeypatch.setattr(author_cache, "entry_of", real)
    assert page(api(reader))["data"][0]["author"]["display_name"] == "New"


def test_a_tweet_filled_from_a_row_read_before_a_rename_is_dropped_by_the_replay(make_user, api, monkeypatch):
    """A cached tweet carries its author's name. A read that fills it from a row read before
    a rename commits writes the old name after the rename dropped the entries; the account-change
    log (the trigger records renames too) drops them again, so the old name does not stay."""
    reader, author = make_user(), make_user(display_name="Old")
    social_services.follow_create(follower=reader, followee_id=author.id)
    tweet = tweet_services.tweet_create(author=author, content="x")
    tweet_cache.evict([tweet.id])
    real = tweet_objects.Author.of

    def hooked(user):
        summary = real(user)  # the reader has read the old row from PostgreSQL
        if user.id == author.id and summary.display_name == "Old":
            social_services.user_update(user=User.objects.get(id=author.id), display_name="New")  # commit+evict
        return summary

    monkeypatch.setattr(tweet_objects.Author, "of", hooked)
    assert page(api(reader))["data"][0]["author"]["display_name"] == "Old"  # read before the rename
    monkeypatch.setattr(tweet_objects.Author, "of", real)
    social_services.account_changes_replay()
    assert page(api(reader))["data"][0]["author"]["display_name"] == "New"


def test_a_deleted_users_tweets_leave_the_tweet_cache(make_user, api, redis):
    reader, author = make_user(), make_user()
    social_services.follow_create(follower=reader, followee_id=author.id)
    tweet = tweet_services.tweet_create(author=author, content="x")
    assert [t["tweet_id"] for t in page(api(reader))["data"]] == [str(tweet.id)]
    assert tweet_cache.get_or_fill_many([tweet.id])  # cached
    User.objects.get(id=author.id).delete()
    assert redis.get(tweet_cache._key(tweet.id)) is None
    assert page(api(reader))["data"] == []


def test_a_suspension_reaches_the_cache_after_commit(make_user, api):
    reader, author = make_user(), make_user()
    social_services.follow_create(follower=reader, followee_id=author.id)
    tweet_services.tweet_create(author=author, content="x")
    with transaction.atomic():  # as in the admin, whose changeform_view is atomic
        social_services.user_suspend(user_id=author.id)
        # a timeline read on another connection between the change and the commit
        t = threading.Thread(target=lambda: author_cache.get_or_fill_many([author.id]))
        t.start()
        t.join()
    assert author_cache.get_or_fill_many([author.id])[author.id].active is False


@override_settings(TIMELINE_MAX_ENTRIES=3, TIMELINE_TRIM_SLACK=0)
def test_next_cursor_stays_set_when_a_database_page_is_thinned_by_a_delete(make_user, api, monkeypatch):
    reader, author = make_user(), make_user()
    social_services.follow_create(follower=reader, followee_id=author.id)
    ids = [tweet_services.tweet_create(author=author, content=f"t{n}").id for n in range(10)]
    client = api(reader)
    first = page(client, limit=2)
    assert first["next_cursor"]
    real = tl_selectors.timeline_ids_from_db
    fired = []

    def hooked(**kw):
        out = real(**kw)
        if kw.get("before") and not fired and out:
            fired.append(1)
            # one of the DB-tail tweets is deleted between the SQL and the hydrate
            tweet_services.tweet_delete(tweet_id=out[0], actor=author)
        return out

    monkeypatch.setattr(tl_selectors, "timeline_ids_from_db", hooked)
    older = page(client, limit=2, cursor=str(ids[-3]))  # window has ids[9..7]; page is from the DB
    assert older["next_cursor"] is not None, f"null next_cursor though {len(ids) - 5} older tweets remain: {older}"


def test_posting_after_a_process_whose_clock_is_ahead_mints_a_greater_id(make_user, monkeypatch):
    author = make_user()
    ahead = snowflake.SnowflakeGenerator(clock=lambda: snowflake._now_ms() + 2_000)
    monkeypatch.setattr(snowflake, "_generator", ahead)
    first = tweet_services.tweet_create(author=author, content="from a host 2 s ahead")
    monkeypatch.setattr(snowflake, "_generator", snowflake.SnowflakeGenerator())
    second = tweet_services.tweet_create(author=author, content="from a host on time")
    assert second.id > first.id


def test_looking_up_an_unknown_id_does_not_hide_the_tweet_that_later_gets_it(make_user, api, monkeypatch):
    author, reader = make_user(), make_user()
    gen = snowflake.SnowflakeGenerator()
    future = gen.next_id() + (1 << 22) * 50  # an id 50 ms from now
    assert api(reader).get(f"/v1/tweets/{future}").status_code == 404
    monkeypatch.setattr(snowflake, "next_id", lambda **kwargs: future)
    tweet_services.tweet_create(author=author, content="hello")
    assert api(reader).get(f"/v1/tweets/{future}").status_code == 200


def test_deeply_nested_json_is_a_400(make_user, api):
    body = "[" * 30000 + "]" * 30000
    client = api(make_user())
    client.raise_request_exception = False
    r = client.post("/v1/tweets", data=body, content_type="application/json")
    assert r.status_code == 400, r.status_code


def test_a_cached_entry_reads_back_as_it_was_packed_and_an_older_layout_is_a_miss(make_user, redis):
    author = make_user(display_name="Ann")
    tweet = tweet_services.tweet_create(author=author, content="hi @bob #tag")
    entry = tweet_objects.TweetEntry.of(tweet)
    assert tweet_objects.TweetEntry.unpack(tweet.id, entry.pack()) == entry
    public = entry.to_public()
    assert len(entry.pack()) < len(orjson.dumps(public)) / 2
    redis.set(tweet_cache._key(tweet.id), orjson.dumps(public))  # the layout before entries were packed
    assert tweet_cache._get_many([tweet.id]) == ({}, [tweet.id])
    # The first packed layout, which held media URLs rather than keys.
    redis.set(tweet_cache._key(tweet.id), orjson.dumps([1, author.id, author.username, "Ann", 1, "hi @bob #tag",
                                                         [], ["bob"], ["tag"]]))
    assert tweet_cache._get_many([tweet.id]) == ({}, [tweet.id])
    assert tweet_cache.get_or_fill_many([tweet.id]) == {tweet.id: entry}  # filled again, packed
    assert tweet_cache._get_many([tweet.id]) == ({tweet.id: entry}, [])
