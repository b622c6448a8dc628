"""Sign-in: app registration, the password, client-credentials and authorization-code
(with PKCE) grants, scopes per endpoint, revocation, /v1 JWTs and suspended users."""
import base64
import hashlib
import re
import time

import pytest
from django.test import Client
from rest_framework.test import APIClient

from social import services as social_services
from tests.factories import PASSWORD
from tests.helpers import form_fields
from timelines.store import keys

from .conftest import password_token

OOB = "urn:ietf:wg:oauth:2.0:oob"


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_registering_an_app_answers_its_credentials(anon, db):
    r = anon.post("/api/v1/apps", {"client_name": "my app", "redirect_uris": OOB, "scopes": "read write",
                                   "website": "https://example.com"}, format="json")
    assert r.status_code == 200
    app = r.json()
    assert app["name"] == "my app" and app["scopes"] == ["read", "write"] and app["redirect_uri"] == OOB
    assert app["client_id"] and app["client_secret"] and app["website"] == "https://example.com"


@pytest.mark.parametrize("body", [
    {"redirect_uris": OOB},  # no name
    {"client_name": "x"},  # no redirect URI
    {"client_name": "x", "redirect_uris": "not a uri"},
    {"client_name": "x", "redirect_uris": OOB, "scopes": "read admin:everything"},
])
def test_a_bad_registration_is_a_422_with_an_error(anon, db, body):
    r = anon.post("/api/v1/apps", body)
    assert r.status_code == 422
    assert set(r.json()) == {"error"} and r.json()["error"].startswith("Validation failed")


def test_the_password_grant_issues_a_token_that_works(app_client, make_user):
    user = make_user()
    r = APIClient().post("/oauth/token", {"grant_type": "password", "client_id": app_client["client_id"],
                                          "client_secret": app_client["client_secret"], "username": user.username,
                                          "password": PASSWORD, "scope": "read write"})
    assert r.status_code == 200
    token = r.json()
    assert token["token_type"] == "Bearer" and token["scope"] == "read write" and token["created_at"] > 0
    assert bearer(token["access_token"]).get("/api/v1/accounts/verify_credentials").json()["id"] == str(user.id)


def test_the_token_endpoint_takes_json_too(app_client, make_user):
    user = make_user()
    r = APIClient().post("/oauth/token", {"grant_type": "password", "client_id": app_client["client_id"],
                                          "client_secret": app_client["client_secret"], "username": user.username,
                                          "password": PASSWORD}, format="json")
    assert r.status_code == 200 and r.json()["scope"] == "read"  # Mastodon's default scope


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke"])
def test_malformed_json_is_an_oauth_invalid_request(path, db):
    r = APIClient().post(path, "{not json", content_type="application/json")
    assert r.status_code == 400 and set(r.json()) == {"error", "error_description"}
    assert r.json()["error"] == "invalid_request" and "JSON parse error" in r.json()["error_description"]


@pytest.mark.parametrize("change, error", [
    ({"password": "wrong"}, "invalid_grant"),
    ({"client_secret": "wrong"}, "invalid_client"),
    ({"scope": "admin:read"}, "invalid_scope"),
    ({"grant_type": "implicit"}, "unsupported_grant_type"),
])
def test_a_bad_token_request_is_an_oauth_error(app_client, make_user, change, error):
    user = make_user()
    body = {"grant_type": "password", "client_id": app_client["client_id"],
            "client_secret": app_client["client_secret"], "username": user.username, "password": PASSWORD, **change}
    r = APIClient().post("/oauth/token", body)
    assert 400 <= r.status_code < 500
    assert r.json()["error"] == error


def test_a_token_has_no_scope_its_app_did_not_register(anon, make_user):
    app = anon.post("/api/v1/apps", {"client_name": "reader", "redirect_uris": OOB, "scopes": "read"}).json()
    user = make_user()
    r = anon.post("/oauth/token", {"grant_type": "password", "client_id": app["client_id"],
                                   "client_secret": app["client_secret"], "username": user.username,
                                   "password": PASSWORD, "scope": "read write"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_scope"


def test_scopes_are_checked_per_endpoint(app_client, make_user):
    user = make_user()
    reader = bearer(password_token(app_client, user, scope="read"))
    assert reader.get("/api/v1/timelines/home").status_code == 200
    r = reader.post("/api/v1/statuses", {"status": "no"})
    assert r.status_code == 403 and r.json() == {"error": "This action is outside the authorized scopes"}
    granular = bearer(password_token(app_client, user, scope="read:accounts"))
    assert granular.get("/api/v1/accounts/verify_credentials").status_code == 200
    assert granular.get("/api/v1/timelines/home").status_code == 403
    follower = bearer(password_token(app_client, user, scope="follow"))
    other = make_user()
    assert follower.post(f"/api/v1/accounts/{other.id}/follow").json()["following"] is True


def test_a_token_outside_the_scope_leaves_the_timeline_untouched(app_client, make_user, redis, settings):
    """The home timeline's first reads refresh the timeline's TTL, mark its owner live and
    count the rate limit: a token without ``read:statuses`` is refused before any of it."""
    settings.RATE_LIMIT_TIMELINE = "1/min"
    user = make_user()
    timeline = keys.timeline_key(user.id)
    redis.rpush(timeline, "1")
    redis.expire(timeline, 100)
    live = keys.live_key(int(time.time()) // keys.ttl_seconds())
    granular = bearer(password_token(app_client, user, scope="read:accounts"))
    r = granular.get("/api/v1/timelines/home")
    assert r.status_code == 403 and r.json() == {"error": "This action is outside the authorized scopes"}
    assert granular.head("/api/v1/timelines/home").status_code == 403
    assert 0 < redis.ttl(timeline) <= 100  # not refreshed to TIMELINE_INACTIVE_DAYS
    assert redis.getbit(live, user.id) == 0
    reader = bearer(password_token(app_client, user, scope="read"))
    assert reader.get("/api/v1/timelines/home").status_code == 200  # the refused reads used none of the limit
    assert redis.ttl(timeline) > 100 and redis.getbit(live, user.id) == 1


def test_client_credentials_give_an_app_token_without_a_user(app_client, db):
    r = APIClient().post("/oauth/token", {"grant_type": "client_credentials", "client_id": app_client["client_id"],
                                          "client_secret": app_client["client_secret"], "scope": "read"})
    assert r.status_code == 200
    client = bearer(r.json()["access_token"])
    assert client.get("/api/v1/apps/verify_credentials").json()["name"] == "tests"
    r = client.get("/api/v1/timelines/home")
    assert r.status_code == 422 and r.json() == {"error": "This method requires an authenticated user"}


def _pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(b"a-verifier-of-at-least-43-characters-long!!").decode().rstrip("=")
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def _consent(browser: Client, app: dict, redirect_uri: str, challenge: str):
    """Sign in on /oauth/login, open the consent page, press Authorize: the final response."""
    authorize = (f"/oauth/authorize?response_type=code&client_id={app['client_id']}&redirect_uri={redirect_uri}"
                 f"&scope=read+write&code_challenge={challenge}&code_challenge_method=S256")
    r = browser.get(authorize)
    assert r.status_code == 302 and r["Location"].startswith("/oauth/login")
    r = browser.post(r["Location"], {"username": app["_user"].username, "password": PASSWORD,
                                     "next": authorize})
    assert r.status_code == 302, r.content
    page = browser.get(authorize)
    assert page.status_code == 200 and b"Authorize" in page.content
    fields = form_fields(page.content.decode(), "authorizationForm")
    return browser.post(authorize, {**{k: v[0] for k, v in fields.items()}, "allow": "Authorize"})


def test_the_authorization_code_grant_with_pkce_and_the_oob_page(app_client, make_user):
    user = make_user()
    verifier, challenge = _pkce()
    r = _consent(Client(), {**app_client, "_user": user}, OOB, challenge)
    assert r.status_code == 200
    code = re.search(r'<code id="code">([^<]+)</code>', r.content.decode()).group(1)
    token_request = {"grant_type": "authorization_code", "code": code, "redirect_uri": OOB,
                     "client_id": app_client["client_id"], "client_secret": app_client["client_secret"]}
    r = APIClient().post("/oauth/token", {**token_request, "code_verifier": "a" * 43})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"  # the wrong verifier
    r = _consent(Client(), {**app_client, "_user": user}, OOB, challenge)
    code = re.search(r'<code id="code">([^<]+)</code>', r.content.decode()).group(1)
    r = APIClient().post("/oauth/token", {**token_request, "code": code, "code_verifier": verifier})
    assert r.status_code == 200, r.content
    me = bearer(r.json()["access_token"]).get("/api/v1/accounts/verify_credentials")
    assert me.json()["username"] == user.username


def test_the_authorization_code_comes_back_to_a_registered_redirect_uri(anon, make_user):
    app = anon.post("/api/v1/apps", {"client_name": "phone", "redirect_uris": "myapp://callback",
                                     "scopes": "read write"}).json()
    verifier, challenge = _pkce()
    r = _consent(Client(), {**app, "_user": make_user()}, "myapp://callback", challenge)
    assert r.status_code == 302 and r["Location"].startswith("myapp://callback?code=")


def test_a_revoked_token_is_refused(app_client, make_user):
    token = password_token(app_client, make_user())
    r = APIClient().post("/oauth/revoke", {"client_id": app_client["client_id"],
                                           "client_secret": app_client["client_secret"], "token": token})
    assert r.status_code == 200 and r.json() == {}
    r = bearer(token).get("/api/v1/accounts/verify_credentials")
    assert r.status_code == 401 and r.json() == {"error": "The access token is invalid"}


def test_a_v1_jwt_is_a_bearer_token_here_too(make_user, api):
    user = make_user()
    r = api(user).get("/api/v1/accounts/verify_credentials")
    assert r.status_code == 200 and r.json()["id"] == str(user.id)


@pytest.mark.parametrize("header", [None, "Bearer nonsense", "Bearer a.b.c", "Bearer"])
def test_no_or_a_bad_token_is_a_401(db, header):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    r = client.get("/api/v1/timelines/home")
    assert r.status_code == 401 and set(r.json()) == {"error"}
    assert r["WWW-Authenticate"].startswith("Bearer")


def test_a_suspended_user_cannot_sign_in_or_use_a_token(app_client, make_user):
    user = make_user()
    token = password_token(app_client, user)
    social_services.user_suspend(user_id=user.id)
    assert bearer(token).get("/api/v1/accounts/verify_credentials").status_code == 401
    r = APIClient().post("/oauth/token", {"grant_type": "password", "client_id": app_client["client_id"],
                                          "client_secret": app_client["client_secret"], "username": user.username,
                                          "password": PASSWORD})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_token_requests_count_against_the_login_limit(app_client, make_user, settings):
    settings.RATE_LIMIT_LOGIN = "2/min"
    user = make_user()
    body = {"grant_type": "password", "client_id": app_client["client_id"],
            "client_secret": app_client["client_secret"], "username": user.username, "password": "wrong"}
    assert [APIClient().post("/oauth/token", body).status_code for _ in range(3)] == [400, 400, 429]


def test_the_sign_in_form_counts_against_the_login_limit(make_user, settings):
    settings.RATE_LIMIT_LOGIN = "2/min"
    user = make_user()
    browser = Client()
    codes = [browser.post("/oauth/login", {"username": user.username, "password": "wrong"}).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]  # the form again with its error, then refused before the password


def test_a_suspended_users_v1_jwt_is_refused_here_too(make_user, api):
    user = make_user()
    client = api(user)
    social_services.user_suspend(user_id=user.id)
    assert client.get("/api/v1/accounts/verify_credentials").status_code == 401
