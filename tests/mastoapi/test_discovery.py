"""What clients and web apps read before anything else: the OAuth server's metadata, NodeInfo,
the instance documents' limits and registrations, and the authorization page under both
of its spellings."""
import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from mastoapi import oauth, scopes, tasks, usage
from media import services as media_services
from tests.helpers import post
from tweets.text import MAX_WEIGHTED_LENGTH

pytestmark = [pytest.mark.django_db]


@pytest.fixture(autouse=True)
def fresh_counts(monkeypatch):
    """No counts yet, neither beat's (the shared cache outlives a test) nor this process's."""
    monkeypatch.setattr(usage, "_last", None)
    cache.delete(usage._KEY)
    yield
    cache.delete(usage._KEY)


def test_the_oauth_metadata_names_every_endpoint_and_what_they_take():
    r = APIClient().get("/.well-known/oauth-authorization-server")
    assert r.status_code == 200
    meta = r.json()
    base = "http://testserver"
    assert meta["issuer"] == f"{base}/"
    assert meta["authorization_endpoint"] == f"{base}/oauth/authorize"
    assert meta["token_endpoint"] == f"{base}/oauth/token"
    assert meta["revocation_endpoint"] == f"{base}/oauth/revoke"
    assert meta["app_registration_endpoint"] == f"{base}/api/v1/apps"
    assert meta["service_documentation"].startswith("https://")
    assert meta["scopes_supported"] == list(scopes.ALL)
    assert meta["response_types_supported"] == ["code"]
    assert meta["response_modes_supported"] == ["query"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["grant_types_supported"] == list(oauth.GRANT_TYPES)
    assert set(meta["token_endpoint_auth_methods_supported"]) == {"client_secret_basic", "client_secret_post"}


def test_nodeinfo_is_linked_and_counts_from_the_database(make_user, api):
    links = APIClient().get("/.well-known/nodeinfo").json()
    assert links == {"links": [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
                                "href": "http://testserver/nodeinfo/2.0"}]}
    author, _ = make_user(), make_user()
    suspended = make_user()
    suspended.is_active = False
    suspended.save()
    post(api(author), "one")
    post(api(author), "two")
    info = APIClient().get("/nodeinfo/2.0").json()
    assert info["version"] == "2.0"
    assert info["software"]["name"] == "hometimeline" and info["software"]["version"]
    # Whose client API this is: how megalodon's detector knows to speak Mastodon's.
    assert info["metadata"]["upstream"]["name"] == "mastodon"
    assert info["protocols"] == [] and info["openRegistrations"] is True
    assert info["usage"] == {"users": {"total": 2, "activeMonth": 1, "activeHalfyear": 1}, "localPosts": 2}


def test_counts_are_kept_a_while_not_counted_on_every_read(make_user, django_assert_num_queries):
    APIClient().get("/nodeinfo/2.0")
    with django_assert_num_queries(0):
        assert APIClient().get("/nodeinfo/2.0").status_code == 200
        assert APIClient().get("/api/v2/instance").status_code == 200


def test_beat_counts_for_every_process_and_no_request_counts(make_user, api, settings,
                                                             django_assert_num_queries):
    author = make_user()
    post(api(author), "one")
    tasks.count_usage_task()  # beat's
    post(api(author), "two")  # shown once beat counts again
    with django_assert_num_queries(0):
        assert APIClient().get("/nodeinfo/2.0").json()["usage"]["localPosts"] == 1
    tasks.count_usage_task()
    assert APIClient().get("/nodeinfo/2.0").json()["usage"]["localPosts"] == 2
    schedule = settings.CELERY_BEAT_SCHEDULE["instance-usage"]
    assert schedule["task"] == tasks.COUNT_USAGE_TASK
    assert schedule["schedule"] == settings.INSTANCE_USAGE_EVERY_SECONDS


def test_the_instance_documents_carry_what_clients_read_at_start(make_user, api, settings):
    post(api(make_user()), "hello")
    v1 = APIClient().get("/api/v1/instance").json()
    v2 = APIClient().get("/api/v2/instance").json()
    assert v1["uri"] == v2["domain"] == settings.MASTODON_DOMAIN
    for version in (v1["version"], v2["version"]):
        assert version.split(" ")[0] == "4.3.0"
    assert v1["urls"]["streaming_api"].startswith("ws") and v2["configuration"]["urls"]["streaming"].startswith("ws")
    for doc in (v1, v2):
        statuses = doc["configuration"]["statuses"]
        assert statuses == {"max_characters": MAX_WEIGHTED_LENGTH,
                            "max_media_attachments": media_services.MAX_MEDIA_PER_TWEET,
                            "characters_reserved_per_url": 23}
        media = doc["configuration"]["media_attachments"]
        assert media["supported_mime_types"] == list(media_services.ALLOWED_TYPES)
        assert media["image_size_limit"] == settings.MEDIA_IMAGE_MAX_BYTES
        assert media["video_size_limit"] == settings.MEDIA_VIDEO_MAX_BYTES
        assert media["description_limit"] == 1500
    # Anyone may sign up, unreviewed.
    assert v1["registrations"] is True and v1["approval_required"] is False
    assert v2["registrations"] == {"enabled": True, "approval_required": False, "message": None, "url": None}
    assert v1["stats"]["user_count"] == 1 and v1["stats"]["status_count"] == 1
    assert v2["usage"] == {"users": {"active_month": 1}}


def test_the_authorization_page_answers_with_or_without_the_trailing_slash(app_client):
    query = {"client_id": app_client["client_id"], "redirect_uri": "urn:ietf:wg:oauth:2.0:oob",
             "response_type": "code", "scope": "read"}
    for path in ("/oauth/authorize", "/oauth/authorize/"):
        r = APIClient().get(path, query)
        assert r.status_code == 302 and r["Location"].startswith("/oauth/login"), path  # sign in first
        bad = APIClient().get(path, {**query, "response_type": "token"})
        assert bad.status_code == 400, path  # the same checks
