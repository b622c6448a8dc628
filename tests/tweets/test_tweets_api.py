"""Posting, reading and deleting tweets over the HTTP API."""
import threading
from datetime import datetime

import pytest
from django.db import connection

from tests.conftest import client_for
from tests.helpers import post, post_tweet

pytestmark = pytest.mark.django_db(transaction=True)


def test_post_returns_a_string_id_and_the_tweet_reads_back(make_user, api):
    alice = make_user(username="alice", display_name="Alice")
    r = post_tweet(api(alice), "Hi @Bob and @bob, see #Django! mail me: x@example.com")
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"tweet_id", "timestamp"}
    assert isinstance(body["tweet_id"], str) and body["tweet_id"].isdigit()
    tweet = api(make_user()).get(f"/v1/tweets/{body['tweet_id']}").json()
    assert tweet["tweet_id"] == body["tweet_id"]
    assert tweet["author"] == {"user_id": str(alice.id), "username": "alice", "display_name": "Alice"}
    assert tweet["mentions"] == ["Bob"]
    assert tweet["hashtags"] == ["Django"]
    assert tweet["media"] == []
    assert tweet["timestamp"] == body["timestamp"]
    assert datetime.fromisoformat(tweet["created_at"]).timestamp() == pytest.approx(body["timestamp"], abs=1)


@pytest.mark.parametrize("content", ["a" * 280, "日本" * 70, "https://example.com/" + "x" * 500 + " " + "b" * 256])
def test_weighted_length_at_the_limit_is_accepted(make_user, api, content):
    assert post_tweet(api(make_user()), content).status_code == 201


@pytest.mark.parametrize("content", ["a" * 281, "日本" * 70 + "a", "😀" * 141])
def test_weighted_length_over_the_limit_is_refused(make_user, api, content):
    r = post_tweet(api(make_user()), content)
    assert r.status_code == 400
    assert "content" in r.json()


@pytest.mark.parametrize("body", [{}, {"content": ""}, {"content": "   \n"}, {"content": None},
                                  {"content": ["a"]}, {"content": {"a": 1}}])
def test_missing_or_blank_content_is_refused(make_user, api, body):
    r = api(make_user()).post("/v1/tweets", body, format="json")
    assert r.status_code == 400
    assert "content" in r.json()


def test_malformed_json_is_a_400(make_user, api):
    r = api(make_user()).post("/v1/tweets", "{not json", content_type="application/json")
    assert r.status_code == 400


def test_posting_needs_a_token(anon):
    assert post_tweet(anon, "hello").status_code == 401


def test_a_body_over_64_kb_is_a_413(make_user, api):
    r = post_tweet(api(make_user()), "a" * (65 * 1024))
    assert r.status_code == 413


@pytest.mark.parametrize("path", ["/v1/tweets/123", "/v1/tweets/99999999999999999999",
                                  "/v1/tweets/9223372036854775808", "/v1/tweets/abc", "/v1/tweets/-1"])
def test_unknown_or_malformed_tweet_ids_are_404(make_user, api, path):
    assert api(make_user()).get(path).status_code == 404


def test_only_the_author_or_a_moderator_may_delete(make_user, api, moderator_user):
    author, other, staff = make_user(), make_user(), make_user()
    staff.is_staff = True  # staff, but not given tweets.delete_tweet (the "moderator" group has it)
    staff.save()
    moderator = moderator_user
    first = post(api(author), "one")
    second = post(api(author), "two")
    assert api(other).delete(f"/v1/tweets/{first}").status_code == 403
    assert api(staff).delete(f"/v1/tweets/{first}").status_code == 403
    assert api(other).get(f"/v1/tweets/{first}").status_code == 200
    assert api(author).delete(f"/v1/tweets/{first}").status_code == 204
    assert api(other).get(f"/v1/tweets/{first}").status_code == 404
    assert api(author).delete(f"/v1/tweets/{first}").status_code == 404
    assert api(moderator).delete(f"/v1/tweets/{second}").status_code == 204
    assert api(author).get(f"/v1/tweets/{second}").status_code == 404


def test_a_private_authors_tweet_is_hidden_from_non_followers(make_user, api):
    author = make_user(is_private=True)
    tweet_id = post(api(author), "secret")
    assert api(make_user()).get(f"/v1/tweets/{tweet_id}").status_code == 404
    assert api(author).get(f"/v1/tweets/{tweet_id}").status_code == 200


def test_deleting_a_tweet_the_caller_cannot_see_is_a_404_as_its_get(make_user, api):
    """A 403 would tell a stranger that a private account's tweet exists."""
    author, stranger = make_user(is_private=True), make_user()
    tweet_id = post(api(author), "secret")
    r = api(stranger).delete(f"/v1/tweets/{tweet_id}")
    assert r.status_code == 404 and r.json() == api(stranger).get(f"/v1/tweets/{int(tweet_id) + 1}").json()
    assert api(author).get(f"/v1/tweets/{tweet_id}").status_code == 200


def test_concurrent_posts_get_distinct_ids_increasing_per_author(make_user):
    authors = [make_user() for _ in range(6)]
    results: dict[int, list[int]] = {a.id: [] for a in authors}
    errors = []

    def post_many(author):
        client = client_for(author)
        try:
            for n in range(25):
                r = post_tweet(client, f"tweet {n}")
                if r.status_code != 201:
                    errors.append(r.content)
                results[author.id].append(int(r.json()["tweet_id"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=post_many, args=(a,)) for a in authors]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    all_ids = [i for ids in results.values() for i in ids]
    assert len(all_ids) == 150 and len(set(all_ids)) == 150
    for ids in results.values():
        assert ids == sorted(ids)


@pytest.mark.parametrize("content", ["a." * 4900, "a." * 150, "x" * 1001])
def test_pathological_or_oversized_text_is_refused_as_a_400(make_user, api, content):
    r = post_tweet(api(make_user()), content)
    assert r.status_code == 400
    assert "content" in r.json()
