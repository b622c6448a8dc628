"""The web client's server side, over HTTP: its page at each of its routes, the sign-up
and sign-out pages the OAuth flow reaches, presigned uploads for OAuth tokens, and a
bucket that lets browsers upload (CORS)."""
import json

import boto3
import pytest
from django.conf import settings
from django.test import Client
from rest_framework.test import APIClient
from twitter_text.regexp.extract_url import extract_url as _extract_url

from social.models import User
from tests.factories import PASSWORD
from tests.helpers import form_fields
from tests.mastoapi.conftest import password_token
from tweets import text

AUTHORIZE = "/oauth/authorize?response_type=code&client_id=x"


def sign_up_form(browser: Client, query: str = "") -> dict:
    r = browser.get(f"/auth/sign_up{query}")
    assert r.status_code == 200
    return form_fields(r.content.decode(), "signUpForm")


def page_config(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="config" type="application/json">') + len(
        '<script id="config" type="application/json">')
    return json.loads(html[start:html.index("</script>", start)])


@pytest.mark.parametrize("path", ["/", "/@someone", "/@someone/388332139131965440", "/follow_requests"])
def test_the_page_is_served_at_each_route_with_what_the_scripts_need(client, path):
    r = client.get(path)
    assert r.status_code == 200
    assert "script-src 'self'" in r["Content-Security-Policy"]
    assert '<script type="module" src="/static/web/app.js">' in r.content.decode()
    config = page_config(r)
    assert config["max_characters"] == 280 and config["counting_rules_url"].startswith("/web/counting-rules.")
    assert config["max_media"] == 4 and config["media_types"]["image/png"] == settings.MEDIA_IMAGE_MAX_BYTES
    assert client.post(path).status_code == 405


def test_the_counting_rules_are_the_servers_at_an_address_kept_for_good(client):
    url = page_config(client.get("/"))["counting_rules_url"]
    r = client.get(url)
    assert r.status_code == 200 and "immutable" in r["Cache-Control"]
    assert r.json() == json.loads(json.dumps(text.counting_rules()))
    assert r.json()["url"] == _extract_url.pattern  # the server's own finder, not a copy
    stale = client.get("/web/counting-rules.000000000000.json")
    assert stale.status_code == 302 and stale["Location"] == url


@pytest.mark.parametrize("module", ["app.js", "api.js", "auth.js", "compose.js", "count.js", "dom.js", "feed.js",
                                   "live.js", "style.css"])
def test_the_scripts_are_served_without_a_build_step(client, module):
    r = client.get(f"/static/web/{module}")
    assert r.status_code == 200
    assert b"".join(r.streaming_content if r.streaming else [r.content])


def test_signing_up_creates_the_account_signs_in_and_goes_on_to_the_authorization(db):
    browser = Client()
    form = sign_up_form(browser, f"?next={AUTHORIZE.replace('&', '%26')}")
    assert form["next"] == [AUTHORIZE]
    r = browser.post("/auth/sign_up", {**form, "username": "newcomer", "display_name": "New",
                                       "password": PASSWORD, "next": AUTHORIZE})
    assert r.status_code == 302 and r["Location"] == AUTHORIZE
    user = User.objects.get(username="newcomer")
    assert user.display_name == "New" and user.check_password(PASSWORD)
    assert browser.session["_auth_user_id"] == str(user.id)


@pytest.mark.parametrize("fields, field", [
    ({"username": "no spaces", "password": PASSWORD}, "username"),
    ({"username": "x" * 16, "password": PASSWORD}, "username"),
    ({"username": "taken", "password": PASSWORD}, "username"),
    ({"username": "fresh", "password": "short"}, "password"),
    ({"username": "fresh", "password": "12345678901"}, "password"),
    ({"username": "fresh"}, "password"),
])
def test_a_bad_sign_up_is_a_400_showing_why_and_creates_nothing(db, make_user, fields, field):
    make_user(username="taken")
    browser = Client()
    form = sign_up_form(browser)
    r = browser.post("/auth/sign_up", {**form, **fields})
    assert r.status_code == 400
    assert r.context["form"].errors[field]
    assert User.objects.count() == 1 and "_auth_user_id" not in browser.session


def test_a_password_chosen_with_spaces_signs_in_as_typed(db):
    browser = Client()
    password = "  spaced out pass  "
    r = browser.post("/auth/sign_up", {**sign_up_form(browser), "username": "spacey", "password": password})
    assert r.status_code == 302
    token = APIClient().post("/v1/auth/token", {"username": "spacey", "password": password}, format="json")
    assert token.status_code == 200, token.content


def test_a_refused_sign_up_shows_the_form_again_with_the_name_typed(db, settings):
    settings.RATE_LIMIT_REGISTER = "1/hour"
    browser = Client()
    form = sign_up_form(browser)
    assert browser.post("/auth/sign_up", {**form, "username": "patient", "password": "short"}).status_code == 400
    r = browser.post("/auth/sign_up", {**form, "username": "patient", "password": PASSWORD})
    assert r.status_code == 429
    fields = form_fields(r.content.decode(), "signUpForm")
    assert fields["username"] == ["patient"] and fields.get("password", [""]) == [""]


def test_sign_up_sends_nowhere_but_this_site(db):
    browser = Client()
    r = browser.post("/auth/sign_up", {**sign_up_form(browser), "username": "newcomer",
                                       "password": PASSWORD, "next": "https://elsewhere.example/steal"})
    assert r.status_code == 302 and r["Location"] == "/"


def test_sign_up_counts_against_the_registration_limit(db, settings):
    settings.RATE_LIMIT_REGISTER = "1/hour"
    browser = Client()
    form = sign_up_form(browser)
    assert browser.post("/auth/sign_up", {**form, "username": "first", "password": PASSWORD}).status_code == 302
    r = browser.post("/auth/sign_up", {**form, "username": "second", "password": PASSWORD})
    assert r.status_code == 429 and int(r["Retry-After"]) > 0
    assert "Too many sign-ups" in r.content.decode()
    assert not User.objects.filter(username="second").exists()


def test_the_sign_in_page_links_to_sign_up_with_the_same_next(db):
    r = Client().get(f"/oauth/login?next={AUTHORIZE.replace('&', '%26')}")
    assert 'href="/auth/sign_up?next=/oauth/authorize%3Fresponse_type%3Dcode%26client_id%3Dx"' in r.content.decode()


def test_signing_out_ends_the_pages_session(db, make_user):
    user = make_user()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    page = browser.get("/")
    r = browser.post("/auth/sign_out", {"csrfmiddlewaretoken": page.context["csrf_token"]})
    assert r.status_code == 302 and r["Location"] == "/"
    assert "_auth_user_id" not in browser.session
    assert browser.get("/auth/sign_out").status_code == 405


def test_an_oauth_token_with_write_media_presigns_an_upload(app_client, make_user):
    user = make_user()

    def presign(scope: str | None):
        client = APIClient()
        if scope:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {password_token(app_client, user, scope)}")
        return client.post("/v1/media", {"content_type": "image/png", "size_bytes": 100}, format="json")

    r = presign("write:media")
    assert r.status_code == 201 and r.json()["media_id"] and r.json()["upload"]["fields"]
    assert presign("read").status_code == 403
    assert presign(None).status_code == 401
    assert presign("write").json()["upload"]["url"]
    # Errors stay /v1's.
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {password_token(app_client, user, 'write')}")
    bad = client.post("/v1/media", {"content_type": "text/plain", "size_bytes": 100}, format="json")
    assert bad.status_code == 400 and "content_type" in bad.json()


def test_the_bucket_lets_pages_of_any_origin_upload(s3_endpoint):
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id=settings.AWS_ACCESS_KEY_ID,
                      aws_secret_access_key=settings.AWS_SECRET_ACCESS_KEY, region_name="us-east-1")
    rules = s3.get_bucket_cors(Bucket=settings.AWS_STORAGE_BUCKET_NAME)["CORSRules"]
    assert rules == [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET", "HEAD", "POST"], "AllowedHeaders": ["*"],
                      "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 3600}]
