"""Sign-in: app registration, the password, client-credentials and authorization-code
(with PKCE) grants, scopes per endpoint, revocation, /v1 JWTs and suspended users."""
import base64
import hashlib
import re
import time
from urllib.parse import urlencode

import pytest
from django.contrib.auth.hashers import make_password
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from oauth2_provider.models import get_application_model
from rest_framework.test import APIClient

from mastoapi.hashers import ClientSecretHasher
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


# --- what the limits count: one username, the client ids, before any hash ------------------


def _password_grant(app: dict, **change) -> dict:
    return {"grant_type": "password", "client_id": app["client_id"], "client_secret": app["client_secret"],
            "username": "victim", "password": "wrong", **change}


@pytest.mark.parametrize("send", [
    pytest.param(lambda body: {"data": {**body, "username": 1234567890123}, "format": "json"}, id="json-number"),
    pytest.param(lambda body: {"data": {**body, "username": ["victim"]}, "format": "json"}, id="json-list"),
    # A second part named username, a file: DRF's request.data holds both, the limit read the
    # file (last) and counted no name, while oauthlib took the string.
    pytest.param(lambda body: {"data": {**body, "username": ["victim", SimpleUploadedFile("u", b"victim")]},
                               "format": "multipart"}, id="multipart-file-part"),
    pytest.param(lambda body: {"data": urlencode({**body, "username": "victim"}) + "&username=victim",
                               "content_type": "application/x-www-form-urlencoded"}, id="form-twice"),
])
def test_a_token_request_naming_its_username_otherwise_than_once_is_an_invalid_request(
        app_client, make_user, settings, hashings, send):
    settings.RATE_LIMIT_LOGIN = "2/min"
    make_user(username="victim")
    make_user(username="1234567890123")
    hashed = len(hashings)
    for n in range(3):
        r = APIClient().post("/oauth/token", REMOTE_ADDR=f"192.0.2.{n}", **send(_password_grant(app_client)))
        assert r.status_code == 400, r.content
        assert r.json() == {"error": "invalid_request",
                            "error_description": "username must be given once, as a string."}
    assert len(hashings) == hashed  # neither the client secret nor a password was hashed


def test_a_client_id_given_twice_is_an_invalid_request(app_client, hashings):
    r = APIClient().post("/oauth/revoke", {"client_id": [app_client["client_id"], "other"], "token": "x",
                                           "client_secret": app_client["client_secret"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    assert "client_id" in r.json()["error_description"] and hashings == []


def _revoke(app: dict, *, ip: str, secret: str = "wrong", client_id: str | None = None, **extra):
    return APIClient().post("/oauth/revoke", {"client_id": client_id or app["client_id"], "client_secret": secret,
                                              "token": "nonsense"}, REMOTE_ADDR=ip, **extra)


def assert_oauth_refused(r, window: int = 60):
    assert r.status_code == 429, r.content
    assert r.json()["error"] == "temporarily_unavailable" and r.json()["error_description"]
    assert 1 <= int(r["Retry-After"]) <= window


def test_revocation_is_limited_per_client_before_the_secret_is_hashed(app_client, settings, hashings):
    settings.RATE_LIMIT_OAUTH_APP = "2/min"
    answers = [_revoke(app_client, ip=f"198.51.100.{n}") for n in range(2)]
    assert [r.status_code for r in answers] == [401, 401]  # invalid_client, the secret checked
    hashed = len(hashings)
    assert hashed >= 2
    for n in range(2, 10):  # a fresh IP each time: the client id's own counter refuses
        assert_oauth_refused(_revoke(app_client, ip=f"198.51.100.{n}"))
    assert_oauth_refused(_revoke(app_client, ip="198.51.100.20", secret=app_client["client_secret"]))
    assert len(hashings) == hashed  # refused before django-oauth-toolkit hashed a secret


def test_an_apps_budget_is_its_own_and_larger_than_one_addresss(app_client, settings):
    """A client id is public and shared by an app's users: the address's small budget
    cannot lock them out, only many addresses reaching the app's own larger one."""
    settings.RATE_LIMIT_OAUTH_CLIENT, settings.RATE_LIMIT_OAUTH_APP = "2/min", "6/min"
    attacker = [_revoke(app_client, ip="203.0.113.66").status_code for _ in range(3)]
    assert attacker == [401, 401, 429]  # refused by the address's counter: the app's counts 2
    users = [_revoke(app_client, ip=f"192.0.2.{n}", secret=app_client["client_secret"]).status_code
             for n in range(4)]
    assert 429 not in users[:4]
    assert_oauth_refused(_revoke(app_client, ip="192.0.2.200"))  # the app's own budget, now spent


def test_a_request_naming_no_client_counts_against_the_address_alone(db, settings):
    settings.RATE_LIMIT_OAUTH_CLIENT = "1/min"
    codes = [APIClient().post("/oauth/revoke", {"token": "x"}, REMOTE_ADDR="203.0.113.77").status_code
             for _ in range(2)]
    assert codes[0] in (400, 401) and codes[1] == 429, codes


def test_revocation_is_limited_per_ip_whatever_the_client(app_client, settings, hashings):
    settings.RATE_LIMIT_OAUTH_CLIENT = "2/min"
    assert [_revoke(app_client, ip="203.0.113.9", client_id=f"made-up-{n}").status_code for n in range(2)] == [401, 401]
    assert_oauth_refused(_revoke(app_client, ip="203.0.113.9"))
    assert _revoke(app_client, ip="203.0.113.10").status_code == 401  # another address: its own counter


def test_a_client_id_in_http_basic_counts_too(app_client, settings):
    settings.RATE_LIMIT_OAUTH_APP = "2/min"
    credentials = base64.b64encode(f"{app_client['client_id']}:wrong".encode()).decode()
    answers = [APIClient().post("/oauth/token", {"grant_type": "client_credentials"}, REMOTE_ADDR=f"192.0.2.{n}",
                                HTTP_AUTHORIZATION=f"Basic {credentials}") for n in range(3)]
    assert [r.status_code for r in answers[:2]] == [401, 401]
    assert_oauth_refused(answers[2])


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke"])
@pytest.mark.parametrize("credentials", ["é", "/w=="])  # not ASCII (it was a 500), not UTF-8
def test_basic_credentials_that_do_not_decode_are_an_invalid_request(db, path, credentials, hashings):
    r = APIClient().post(path, {"grant_type": "client_credentials", "token": "x"},
                         HTTP_AUTHORIZATION=f"Basic {credentials}")
    assert r.status_code == 400, r.content
    assert r.json()["error"] == "invalid_request" and "Basic credentials" in r.json()["error_description"]
    assert hashings == []


def test_token_requests_count_against_the_client_limit_and_are_refused_before_the_login_limit(
        app_client, make_user, settings, redis):
    settings.RATE_LIMIT_OAUTH_APP = "2/min"
    make_user(username="victim")
    answers = [APIClient().post("/oauth/token", _password_grant(app_client), REMOTE_ADDR=f"192.0.2.{n}")
               for n in range(3)]
    assert [r.status_code for r in answers[:2]] == [400, 400]  # invalid_grant
    assert_oauth_refused(answers[2])
    # The refused request counted against no login counter.
    name_keys = list(redis.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}rl:login:name:*"))
    assert [redis.get(key) for key in name_keys] == [b"2"]
    assert redis.get(f"{settings.REDIS_KEY_PREFIX}rl:login:ip:192.0.2.2") is None


def test_the_login_limits_refusal_is_oauth_shaped(app_client, make_user, settings):
    settings.RATE_LIMIT_LOGIN = "1/min"
    make_user(username="victim")
    assert APIClient().post("/oauth/token", _password_grant(app_client)).status_code == 400
    assert_oauth_refused(APIClient().post("/oauth/token", _password_grant(app_client)))


# --- redirect URIs: what an app may register, and no redirect without a click ---------------


@pytest.mark.parametrize("uri", ["https://app.example/callback", "http://127.0.0.1:8080/cb", "http://[::1]/cb",
                                 "http://localhost/cb", "com.example.app:/oauth2redirect", "myapp://callback", OOB])
def test_an_app_may_register_https_loopback_http_or_its_own_scheme(anon, db, uri):
    r = anon.post("/api/v1/apps", {"client_name": "x", "redirect_uris": uri})
    assert r.status_code == 200, r.content
    assert r.json()["redirect_uri"] == uri


@pytest.mark.parametrize(("uri", "why"), [
    ("javascript:alert(document.cookie)", "cannot use the javascript: scheme"),
    ("JavaScript://%0aalert(1)", "cannot use the javascript: scheme"),
    ("data:text/html,<script>alert(1)</script>", "cannot use the data: scheme"),
    ("file:///etc/passwd", "cannot use the file: scheme"),
    ("vbscript:msgbox", "cannot use the vbscript: scheme"),
    ("http://evil.example/cb", "must use https"),
    ("http://127.0.0.1@evil.example/cb", "must use https"),
    ("https://app.example/cb#fragment", "cannot contain a fragment"),
    ("https:///no-host", "must be an absolute URI"),
])
def test_an_app_may_not_register_a_redirect_uri_a_browser_would_run_or_send_in_clear(anon, db, uri, why):
    r = anon.post("/api/v1/apps", {"client_name": "x", "redirect_uris": f"https://fine.example/cb {uri}"})
    assert r.status_code == 422, r.content
    assert set(r.json()) == {"error"}
    assert r.json()["error"].startswith("Validation failed: Redirect URI ") and why in r.json()["error"]


@pytest.fixture
def https_app(anon, db):
    return anon.post("/api/v1/apps", {"client_name": "web", "redirect_uris": "https://app.example/cb",
                                      "scopes": "read write"}).json()


@pytest.fixture
def signed_in(make_user):
    browser = Client()
    browser.force_login(make_user())
    return browser


def _authorize(app: dict, **params) -> str:
    query = {"response_type": "code", "client_id": app["client_id"], "redirect_uri": "https://app.example/cb",
             "scope": "read", "state": "s1", **params}
    return "/oauth/authorize?" + urlencode({k: v for k, v in query.items() if v is not None}, doseq=True)


def test_a_good_authorization_request_shows_the_consent_page(https_app, signed_in):
    r = signed_in.get(_authorize(https_app, scope="read write"))
    assert r.status_code == 200 and b"authorizationForm" in r.content


@pytest.mark.parametrize(("params", "error"), [
    ({"scope": "read admin:read"}, "invalid_scope"),
    ({"scope": "follow"}, "invalid_scope"),  # not one the app registered
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"code_challenge": "a" * 43, "code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": "a" * 43}, "invalid_request"),  # no method: plain, which is refused
    ({"code_challenge": "short", "code_challenge_method": "S256"}, "invalid_request"),
    ({"state": "x" * 2049}, "invalid_request"),
    ({"scope": ["read", "write"]}, "invalid_request"),  # repeated
])
def test_a_bad_parameter_is_an_error_page_with_a_link_back_not_a_redirect(https_app, signed_in, params, error):
    r = signed_in.get(_authorize(https_app, **params))
    assert r.status_code == 400 and "Location" not in r
    page = r.content.decode()
    assert f"<code>{error}</code>" in page
    back = re.search(r'<a id="back" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert back.startswith(f"https://app.example/cb?error={error}&error_description=")
    assert ("&state=s1" in back) == (params.get("state") is None)


@pytest.mark.parametrize("params", [
    {"client_id": "nobody"},
    {"client_id": None},
    {"redirect_uri": "https://evil.example/cb"},
    {"redirect_uri": None},  # Mastodon's clients always name it
    {"redirect_uri": ["https://app.example/cb", "https://app.example/cb"]},
    {"redirect_uri": "https://app.example/cb/../other"},
])
def test_a_bad_client_or_redirect_uri_is_an_error_page_with_nowhere_to_go(https_app, signed_in, params):
    r = signed_in.get(_authorize(https_app, scope="nonsense", **params))
    assert r.status_code == 400 and "Location" not in r
    assert b'id="back"' not in r.content and b"evil.example" not in r.content


def test_an_app_registered_before_the_redirect_uri_rules_cannot_use_a_forbidden_one(https_app, signed_in):
    Application = get_application_model()
    Application.objects.filter(client_id=https_app["client_id"]).update(redirect_uris="javascript:alert(1)")
    r = signed_in.get(_authorize(https_app, redirect_uri="javascript:alert(1)", scope="nonsense"))
    assert r.status_code == 400 and "Location" not in r and b'id="back"' not in r.content
    r = signed_in.get(_authorize(https_app, redirect_uri="javascript:alert(1)"))
    assert r.status_code == 400 and b"authorizationForm" not in r.content


def test_a_bad_request_is_an_error_page_before_the_sign_in_too(https_app, db):
    r = Client().get(_authorize(https_app, scope="read admin:read"))
    assert r.status_code == 400 and "Location" not in r and b"invalid_scope" in r.content
    r = Client().get(_authorize(https_app))
    assert r.status_code == 302 and r["Location"].startswith("/oauth/login")


def test_the_consent_form_is_checked_as_the_request_was(https_app, signed_in):
    page = signed_in.get(_authorize(https_app))
    fields = {k: v[0] for k, v in form_fields(page.content.decode(), "authorizationForm").items()}
    r = signed_in.post("/oauth/authorize", {**fields, "scope": "read admin:read", "allow": "Authorize"})
    assert r.status_code == 400 and "Location" not in r
    r = signed_in.post("/oauth/authorize", {**fields, "allow": "Authorize"})
    assert r.status_code == 302 and r["Location"].startswith("https://app.example/cb?code=")


def test_client_secrets_are_stored_as_salted_sha256_and_checked_as_stored(app_client, hashings):
    """Stored with the default password hasher (PBKDF2, 1,000,000 rounds in production),
    each client check cost half a second of CPU; the secret is random, so SHA-256 is as safe."""
    Application = get_application_model()
    secret = app_client["client_secret"]
    stored = Application.objects.get(client_id=app_client["client_id"]).client_secret
    assert stored.startswith("client_secret_sha256$") and secret not in stored
    assert ClientSecretHasher().verify(secret, stored) and not ClientSecretHasher().verify(secret[:-1] + "!", stored)
    grant = {"grant_type": "client_credentials", "client_id": app_client["client_id"], "client_secret": secret}
    assert APIClient().post("/oauth/token", grant).status_code == 200
    assert APIClient().post("/oauth/token", {**grant, "client_secret": "wrong"}).status_code == 401
    # A secret stored before, with the password hasher, still authenticates.
    Application.objects.filter(client_id=app_client["client_id"]).update(client_secret=make_password(secret))
    assert APIClient().post("/oauth/token", grant).status_code == 200
