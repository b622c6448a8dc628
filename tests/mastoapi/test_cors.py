"""CORS as Mastodon answers it: any origin may call the APIs, the token endpoints and the
discovery documents with a bearer token, never with credentials; the admin and the HTML
sign-in pages stay same-origin. Refusals (401, 413, 429) carry the headers too, so a
script on another origin can read why it was refused."""
import pytest
from rest_framework.test import APIClient

pytestmark = [pytest.mark.django_db]

ORIGIN = "https://client.example"
EXPOSED = {"link", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "retry-after",
           "idempotent-replayed"}


def preflight(path: str, method: str = "GET", headers: str = "authorization"):
    return APIClient().options(path, HTTP_ORIGIN=ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
                               HTTP_ACCESS_CONTROL_REQUEST_HEADERS=headers)


def no_credentials(response) -> None:
    assert "Access-Control-Allow-Credentials" not in response


@pytest.mark.parametrize("path, method", [
    ("/api/v1/timelines/home", "GET"),  # needs a token, which a preflight never carries
    ("/api/v1/statuses", "POST"),
    ("/api/v2/media", "POST"),
    ("/api/v1/media/1", "PUT"),
    ("/api/v1/instance", "GET"),
    ("/oauth/token", "POST"),
    ("/oauth/revoke", "POST"),
    ("/v1/timeline/home", "GET"),
    ("/v1/tweets", "POST"),
    ("/.well-known/nodeinfo", "GET"),
    ("/.well-known/oauth-authorization-server", "GET"),
    ("/nodeinfo/2.0", "GET"),
])
def test_preflight_is_answered_for_any_origin_on_the_apis(path, method):
    r = preflight(path, method, "authorization, content-type, idempotency-key")
    assert r.status_code in (200, 204), r.content
    assert r["Access-Control-Allow-Origin"] == "*"
    allowed = {h.strip() for h in r["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key"} <= allowed
    assert method in r["Access-Control-Allow-Methods"]
    no_credentials(r)


@pytest.mark.parametrize("path", ["/admin/", "/admin/login/", "/oauth/authorize", "/oauth/authorize/",
                                  "/oauth/login", "/healthz"])
def test_html_pages_and_the_admin_stay_same_origin(path):
    r = preflight(path)
    assert "Access-Control-Allow-Origin" not in r
    r = APIClient().get(path, HTTP_ORIGIN=ORIGIN)
    assert "Access-Control-Allow-Origin" not in r and "Access-Control-Expose-Headers" not in r


def test_the_schemas_html_page_stays_same_origin():
    r = APIClient().get("/v1/docs", HTTP_ORIGIN=ORIGIN)
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r
    assert APIClient().get("/v1/schema", HTTP_ORIGIN=ORIGIN)["Access-Control-Allow-Origin"] == "*"


def test_an_actual_request_shows_the_headers_and_exposes_paging_and_limits(make_user, masto):
    reader = make_user()
    r = masto(reader).get("/api/v1/timelines/home", HTTP_ORIGIN=ORIGIN)
    assert r.status_code == 200
    assert r["Access-Control-Allow-Origin"] == "*"
    assert {h.strip().lower() for h in r["Access-Control-Expose-Headers"].split(",")} == EXPOSED
    no_credentials(r)


def test_a_token_request_from_another_origin_is_answered_with_the_headers(app_client):
    r = APIClient().post("/oauth/token", {"grant_type": "client_credentials", "client_id": app_client["client_id"],
                                          "client_secret": app_client["client_secret"]}, HTTP_ORIGIN=ORIGIN)
    assert r.status_code == 200 and r["Access-Control-Allow-Origin"] == "*"
    no_credentials(r)


def test_refusals_carry_the_headers_so_scripts_can_read_them(settings, make_user, masto):
    unauthenticated = APIClient().get("/api/v1/timelines/home", HTTP_ORIGIN=ORIGIN)
    assert unauthenticated.status_code == 401
    assert unauthenticated["Access-Control-Allow-Origin"] == "*"
    too_large = APIClient().generic("POST", "/api/v1/statuses", "x" * (settings.MAX_REQUEST_BODY_BYTES + 1),
                                    content_type="application/json", HTTP_ORIGIN=ORIGIN)
    assert too_large.status_code == 413 and too_large["Access-Control-Allow-Origin"] == "*"
    settings.RATE_LIMIT_TIMELINE = "1/min"
    client = masto(make_user())
    assert client.get("/api/v1/timelines/home", HTTP_ORIGIN=ORIGIN).status_code == 200
    limited = client.get("/api/v1/timelines/home", HTTP_ORIGIN=ORIGIN)
    assert limited.status_code == 429
    assert limited["Access-Control-Allow-Origin"] == "*" and limited["Retry-After"]
    assert "retry-after" in limited["Access-Control-Expose-Headers"].lower()
    for r in (unauthenticated, too_large, limited):
        no_credentials(r)


def test_a_preflight_is_not_counted_against_a_rate_limit(settings, make_user, masto):
    settings.RATE_LIMIT_TIMELINE = "1/min"
    client = masto(make_user())
    for _ in range(3):
        assert preflight("/api/v1/timelines/home").status_code in (200, 204)
    assert client.get("/api/v1/timelines/home").status_code == 200


def test_credentials_are_never_allowed_even_when_a_cookie_is_sent(make_user, masto):
    client = masto(make_user())
    client.cookies["sessionid"] = "anything"
    r = client.get("/api/v1/accounts/verify_credentials", HTTP_ORIGIN=ORIGIN)
    assert r["Access-Control-Allow-Origin"] == "*"
    no_credentials(r)
