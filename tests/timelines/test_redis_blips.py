"""Redis failing after a commit: the answer matches what was committed, and nothing stays stale."""
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.helpers import cached, ids
from timelines import store
from tweets import cache as tweet_cache
from tweets.models import Tweet

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_failed_timeline_update_after_a_follow_is_retried_by_a_task(make_user, api, monkeypatch):
    reader, author = make_user(), make_user()
    t = api(author).post("/v1/tweets", {"content": "x"}, format="json").json()["tweet_id"]
    assert ids(api(reader)) == []  # cached, complete, empty
    assert cached(store.timeline_key(reader.id)) == ["0"]
    real = store.generation_advance
    failures = []

    def fails_once(**kw):
        if not failures:
            failures.append(kw)
            raise RedisConnectionError("blip")
        return real(**kw)

    monkeypatch.setattr(store, "generation_advance", fails_once)
    c = api(reader)
    c.raise_request_exception = False
    # Committed: the answer is the follow's, and the update is handed to a retried task
    # (run inline here), which backfills the list itself: no second follow, no rebuild.
    assert c.post(f"/v1/users/{author.id}/follow").status_code == 200
    assert failures, "the update after commit never ran"
    assert cached(store.timeline_key(reader.id)) == [t, "0"]
    assert ids(api(reader)) == [t]


def test_a_repeated_follow_heals_a_timeline_whose_update_failed_for_good(make_user, api, monkeypatch):
    reader, author = make_user(), make_user()
    t = api(author).post("/v1/tweets", {"content": "x"}, format="json").json()["tweet_id"]
    assert ids(api(reader)) == []

    def boom(**kw):
        raise RedisConnectionError("down")

    monkeypatch.setattr(store, "generation_advance", boom)  # the task's retries fail too
    c = api(reader)
    c.raise_request_exception = False
    assert c.post(f"/v1/users/{author.id}/follow").status_code == 200
    monkeypatch.undo()
    assert cached(store.timeline_key(reader.id)) == ["0"]  # stale: still without the new followee
    assert api(reader).post(f"/v1/users/{author.id}/follow").status_code == 200  # a client's retry
    assert cached(store.timeline_key(reader.id)) == [t, "0"]
    assert ids(api(reader)) == [t]


def test_a_failed_cache_warmup_after_commit_still_answers_201(make_user, api, monkeypatch):
    author = make_user()

    def boom(entries):
        raise RedisConnectionError("blip")

    monkeypatch.setattr(tweet_cache, "fill_many", boom)
    c = api(author)
    c.raise_request_exception = False
    r = c.post("/v1/tweets", {"content": "x"}, format="json")
    assert r.status_code == 201
    assert Tweet.objects.filter(author=author).count() == 1
