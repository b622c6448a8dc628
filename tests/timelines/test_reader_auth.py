"""The timeline authenticates its reader from the author cache: same answers as a database lookup."""
import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from social import services as social_services

pytestmark = pytest.mark.django_db


def _client(token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_a_reader_is_authenticated_without_a_query_once_cached(make_user, api, django_assert_num_queries):
    reader = make_user()
    assert api(reader).get("/v1/timeline/home").status_code == 200
    client = api(reader)  # a new token, minted before the count
    with django_assert_num_queries(0):
        assert client.get("/v1/timeline/home").status_code == 200


@pytest.mark.django_db(transaction=True)  # the author cache is refreshed on commit
def test_a_suspended_reader_is_refused_at_once(make_user, api):
    reader = make_user()
    assert api(reader).get("/v1/timeline/home").status_code == 200
    social_services.user_suspend(user_id=reader.id)
    r = api(reader).get("/v1/timeline/home")
    assert r.status_code == 401 and r.json()["detail"]


def test_a_token_of_a_user_who_no_longer_exists_is_a_401(make_user):
    user = make_user()
    token = AccessToken.for_user(user)
    user.delete()
    assert _client(token).get("/v1/timeline/home").status_code == 401


@pytest.mark.parametrize("claim", ["abc", "", ["1"], {"a": 1}, "1\x00", -5, 0, 10**30, "9" * 40])
def test_a_token_whose_user_claim_is_not_an_id_is_a_401(make_user, claim):
    token = AccessToken.for_user(make_user())
    token["user_id"] = claim
    assert _client(token).get("/v1/timeline/home").status_code == 401


def test_a_token_without_a_user_claim_is_a_401(make_user):
    token = AccessToken.for_user(make_user())
    del token.payload["user_id"]
    assert _client(token).get("/v1/timeline/home").status_code == 401
