"""Fixtures of the Mastodon API tests: a registered app, and clients holding its tokens."""
import pytest
from rest_framework.test import APIClient

from tests.factories import PASSWORD


@pytest.fixture
def app_client(db):
    """A registered app: ``{"client_id", "client_secret", ...}`` (the Application entity)."""
    r = APIClient().post("/api/v1/apps", {"client_name": "tests", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob",
                                          "scopes": "read write follow push"})
    assert r.status_code == 200, r.content
    return r.json()


def password_token(app: dict, user, scope: str = "read write follow") -> str:
    r = APIClient().post("/oauth/token", {"grant_type": "password", "client_id": app["client_id"],
                                          "client_secret": app["client_secret"], "username": user.username,
                                          "password": PASSWORD, "scope": scope})
    assert r.status_code == 200, r.content
    return r.json()["access_token"]


@pytest.fixture
def masto(app_client):
    """``masto(user, scope=...)`` -> an APIClient holding an OAuth token of ``user``."""

    def make(user, scope: str = "read write follow") -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {password_token(app_client, user, scope)}")
        return client

    return make
