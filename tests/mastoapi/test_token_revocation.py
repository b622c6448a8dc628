"""OAuth tokens end when they should: on a password change, a suspension, and the replay of a
rotated refresh token (which ends its whole chain)."""
import hashlib
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, Grant, RefreshToken
from rest_framework.test import APIClient

from social import services as social_services
from social.models import User
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



def cache_key(token: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}tok:{hashlib.sha256(token.encode()).hexdigest()}"


def new_password(user) -> None:
    user = User.objects.get(id=user.id)
    user.set_password("a-whole-new-passphrase")
    user.save()


def test_a_new_password_revokes_every_oauth_token_of_the_user_though_cached(app_client, make_user, redis):
    alice, bob = make_user(), make_user()
    tokens = [password_grant(app_client, alice) for _ in range(2)]
    bobs = password_grant(app_client, bob)
    for token in (*tokens, bobs):
        assert bearer(token["access_token"]).get(VERIFY).status_code == 200  # cached now

    new_password(alice)

    for token in tokens:
        assert redis.get(cache_key(token["access_token"])) == b"-"  # marked revoked at once
        r = bearer(token["access_token"]).get(VERIFY)
        assert r.status_code == 401 and r.json() == {"error": "The access token is invalid"}
        assert refresh_grant(app_client, token["refresh_token"]).json()["error"] == "invalid_grant"
    assert not AccessToken.objects.filter(user_id=alice.id).exists()
    assert not RefreshToken.objects.filter(user_id=alice.id, revoked__isnull=True).exists()
    assert bearer(bobs["access_token"]).get(VERIFY).status_code == 200


def test_an_authorization_code_issued_before_a_new_password_cannot_be_exchanged(app_client, make_user):
    alice = make_user()
    Grant.objects.create(user=alice, application=Application.objects.get(client_id=app_client["client_id"]),
                         code="code-before", expires=timezone.now() + timedelta(minutes=5),
                         redirect_uri="urn:ietf:wg:oauth:2.0:oob", scope="read")

    new_password(alice)

    r = APIClient().post("/oauth/token", {"grant_type": "authorization_code", "client_id": app_client["client_id"],
                                          "client_secret": app_client["client_secret"], "code": "code-before",
                                          "redirect_uri": "urn:ietf:wg:oauth:2.0:oob"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_reinstating_a_suspended_user_brings_no_oauth_token_back(app_client, make_user, redis):
    alice = make_user()
    token = password_grant(app_client, alice)
    assert bearer(token["access_token"]).get("/api/v1/timelines/home").status_code == 200

    social_services.user_suspend(user_id=alice.id)
    assert redis.get(cache_key(token["access_token"])) == b"-"
    social_services.user_reinstate(user_id=alice.id)

    for path in ("/api/v1/timelines/home", VERIFY):
        assert bearer(token["access_token"]).get(path).status_code == 401
    assert refresh_grant(app_client, token["refresh_token"]).json()["error"] == "invalid_grant"
    assert bearer(password_grant(app_client, alice)["access_token"]).get(VERIFY).status_code == 200
