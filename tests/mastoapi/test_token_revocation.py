"""OAuth tokens end when they should: on a password change, a suspension, and the replay of a
rotated refresh token (which ends its whole chain)."""
import pytest
from rest_framework.test import APIClient

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)  # the token cache forgets once changes commit

VERIFY = "/api/v1/accounts/verify_credentials"


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def password_grant(app: dict, user) -> dict:
    r = APIClient().post("/oauth/token", {"grant_type": "password", "client_id": app["client_id"],
                                          "client_secret": app["client_secret"], "username": user.username,
                                          "password": PASSWORD, "scope": "read"})
    assert r.status_code == 200, r.content
    return r.json()


def refresh_grant(app: dict, refresh_token: str):
    return APIClient().post("/oauth/token", {"grant_type": "refresh_token", "client_id": app["client_id"],
                                             "client_secret": app["client_secret"], "refresh_token": refresh_token})


def test_a_replayed_rotated_refresh_token_ends_its_whole_chain(app_client, make_user):
    user = make_user()
    first = password_grant(app_client, user)
    second = refresh_grant(app_client, first["refresh_token"])
    assert second.status_code == 200, second.content
    second = second.json()
    third = refresh_grant(app_client, second["refresh_token"]).json()
    assert bearer(third["access_token"]).get(VERIFY).status_code == 200  # cached now

    replay = refresh_grant(app_client, first["refresh_token"])

    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert bearer(third["access_token"]).get(VERIFY).status_code == 401
    assert refresh_grant(app_client, third["refresh_token"]).status_code == 400

