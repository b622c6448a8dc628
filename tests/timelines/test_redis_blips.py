"""Redis failing after a commit: the answer matches what was committed, and nothing stays stale."""
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from timelines import store
from tweets import cache as tweet_cache
from tweets.models import Tweet

pytestmark = pytest.mark.django_db(transaction=True)


def _ids(client):
    return [t["tweet_id"] for t in client.get("/v1/timeline/home").json()["data"]]


def test_a_failed_invalidation_after_a_follow_is_healed(make_user, api, monkeypatch):
    reader, author = make_user(), make_user()
    t = api(author).post("/v1/tweets", {"content": "x"}, format="json").json()["tweet_id"]
    assert _ids(api(reader)) == []  # cached, complete, empty
    real = store.follow_graph_changed

    def boom(**kw):
        raise RedisConnectionError("blip")

    monkeypatch.setattr(store, "follow_graph_changed", boom)
    c = api(reader)
    c.raise_request_exception = False
    # Committed: the answer is the follow's, and the invalidation is handed to a retried task.
    assert c.post(f"/v1/users/{author.id}/follow").status_code == 200
    monkeypatch.setattr(store, "follow_graph_changed", real)
    assert api(reader).post(f"/v1/users/{author.id}/follow").status_code == 200  # a client's retry heals it too
    assert _ids(api(reader)) == [t]


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
