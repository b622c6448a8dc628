"""Retry-safe posting: an Idempotency-Key answers its first tweet again for 24 h and never double-posts."""
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import client_for
from tests.helpers import run_concurrently
from tweets import services
from tweets.models import IdempotencyKey, Tweet


def post(client, content="hello", key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key is not None else {}
    return client.post("/v1/tweets", {"content": content}, format="json", **headers)


@pytest.mark.django_db
def test_the_same_key_again_answers_the_first_tweet_and_creates_nothing(api, make_user):
    author = make_user()
    client = api(author)

    first = post(client, key="k-1")
    again = post(client, key="k-1")

    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert list(Tweet.objects.filter(author=author).values_list("id", flat=True)) == [int(first.json()["tweet_id"])]


@pytest.mark.django_db
def test_the_same_key_with_another_request_is_a_422_and_posts_nothing(api, make_user):
    author = make_user()
    client = api(author)
    first = post(client, "first", key="same")

    # Checked before anything else: another media list is refused before its ids are looked at.
    for changed in ({"content": "second"}, {"content": "first", "media_ids": ["12345"]}):
        r = client.post("/v1/tweets", changed, format="json", HTTP_IDEMPOTENCY_KEY="same")
        assert r.status_code == 422 and "Idempotency-Key" in r.json()["detail"], r.content
    assert list(Tweet.objects.filter(author=author).values_list("content", flat=True)) == ["first"]
    assert post(client, "first", key="same").json() == first.json()  # the same request still replays


@pytest.mark.django_db
def test_keys_are_per_user_and_no_key_means_no_deduplication(api, make_user):
    alice, bob = make_user(), make_user()
    a, b = post(api(alice), key="shared"), post(api(bob), key="shared")
    assert a.status_code == b.status_code == 201 and a.json() != b.json()
    assert post(api(alice)).status_code == post(api(alice)).status_code == 201
    assert Tweet.objects.filter(author=alice).count() == 3


@pytest.mark.django_db
def test_a_refused_post_leaves_its_key_free_for_the_retry(api, make_user):
    author = make_user()
    client = api(author)

    assert post(client, "x" * 281, key="retry-me").status_code == 400
    assert not IdempotencyKey.objects.exists()
    retried = post(client, "fixed", key="retry-me")
    assert retried.status_code == 201
    assert Tweet.objects.get(author=author).content == "fixed"


@pytest.mark.django_db
def test_a_key_older_than_a_day_posts_again_and_the_sweep_forgets_old_keys(api, make_user, settings):
    author = make_user()
    client = api(author)
    first = post(client, key="daily")
    a_day_ago = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS + 1)
    IdempotencyKey.objects.update(created_at=a_day_ago)

    later = post(client, key="daily")

    assert later.status_code == 201 and later.json()["tweet_id"] != first.json()["tweet_id"]
    assert post(client, key="daily").json()["tweet_id"] == later.json()["tweet_id"]
    post(client, key="other")
    IdempotencyKey.objects.filter(key="other").update(created_at=timezone.now() - timedelta(days=2))
    assert services.idempotency_keys_sweep() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["daily"]


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "x" * 256, "naïve", "with space"])
def test_malformed_keys_are_400_and_post_nothing(api, make_user, key):
    author = make_user()
    r = post(api(author), key=key)
    assert r.status_code == 400 and "key" in r.json()
    assert not Tweet.objects.filter(author=author).exists()


@pytest.mark.django_db(transaction=True)
def test_the_same_key_at_once_from_several_requests_posts_one_tweet(make_user):
    author = make_user()
    calls = [(client_for(author), "post", "/v1/tweets",
              {"data": {"content": "once"}, "format": "json", "HTTP_IDEMPOTENCY_KEY": "race"})] * 4

    results = run_concurrently(calls)

    assert sorted(status for status, _ in results) == [200, 200, 200, 201]
    assert len({body["tweet_id"] for _, body in results}) == 1
    assert Tweet.objects.filter(author=author).count() == 1
