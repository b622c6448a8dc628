"""Text no field may hold (NUL, a lone surrogate) is a 400 wherever it comes in, and only a
lost database connection is a 503: any other database error is a bug (500), never "try again"."""
import base64
import json

import pytest
from django.db import DataError, IntegrityError, InterfaceError, OperationalError, ProgrammingError

from core.exceptions import exception_handler
from tweets.models import Tweet

pytestmark = pytest.mark.django_db(transaction=True)

NUL, SURROGATE = "a\u0000b", "a\ud800b"


@pytest.mark.parametrize("text", [NUL, SURROGATE])
def test_mastodon_app_registration_refuses_unstorable_text_with_a_400(anon, text):
    body = {"client_name": text, "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}
    for r in (anon.post("/api/v1/apps", json.dumps(body), content_type="application/json"),
              anon.post("/api/v1/apps", body) if text == NUL else None):  # a form cannot carry a surrogate
        if r is None:
            continue
        assert r.status_code == 400 and "NUL" in r.json()["error"], (r.status_code, r.content)


@pytest.mark.parametrize("text", [NUL, SURROGATE])
def test_unstorable_text_in_a_key_or_a_nested_value_is_a_400(make_user, api, text):
    client = api(make_user())
    for body in ({"content": "ok", text: 1}, {"content": "ok", "media_ids": [text]}):
        r = client.post("/v1/tweets", json.dumps(body), content_type="application/json")
        assert r.status_code == 400, (r.status_code, r.content)
    assert not Tweet.objects.exists()


@pytest.mark.parametrize("url", ["/v1/timeline/home?cursor=%00", "/v1/users/me?x=a%00"])
def test_nul_in_a_query_string_is_a_400(make_user, api, url):
    r = api(make_user()).get(url)
    assert r.status_code == 400 and "NUL" in r.json()["detail"], r.content


def test_nul_in_the_admins_search_is_a_400(client, staff):
    client.force_login(staff)
    assert client.get("/admin/social/user/?q=a").status_code == 200
    assert client.get("/admin/social/user/?q=a%00b").status_code == 400


@pytest.mark.parametrize("error", [IntegrityError("duplicate key"), ProgrammingError("no such column"),
                                   DataError("value too long")])
def test_a_database_error_that_is_a_bug_is_not_answered_as_an_outage(error):
    assert exception_handler(error, {}) is None  # on to Django's 500 and the error log


@pytest.mark.parametrize("error", [OperationalError("connection refused"), InterfaceError("connection already closed")])
def test_a_lost_database_connection_is_a_503_with_retry_after(error):
    response = exception_handler(error, {})
    assert response.status_code == 503 and response["Retry-After"] == "5"


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke"])
def test_nul_in_an_oauth_client_id_is_a_400_wherever_it_is_given(anon, path):
    credentials = base64.b64encode(b"%00:secret").decode()
    r = anon.post(path, {"grant_type": "client_credentials", "token": "x"}, HTTP_AUTHORIZATION=f"Basic {credentials}")
    assert r.status_code == 400 and r.json()["error"] == "invalid_request", (r.status_code, r.content)
    r = anon.post(path, "grant_type=client_credentials&client_id=a%00b&client_secret=x&token=x",
                  content_type="application/x-www-form-urlencoded")
    assert r.status_code == 400, (r.status_code, r.content)


def test_nul_in_a_form_outside_drf_is_a_400(client):
    """The sign-in pages and the OAuth consent read their forms themselves."""
    for path in ("/oauth/login", "/oauth/authorize", "/admin/login/"):
        r = client.post(path, "username=a%00b&password=x&client_id=%00",
                        content_type="application/x-www-form-urlencoded")
        body = r.json()
        assert r.status_code == 400 and "NUL" in body.get("detail", body.get("error", "")), (path, r.content[:200])
