"""Statuses, media, the home timeline, markers and the instance, through the Mastodon API."""
import json

import pytest
import requests
from django.test import override_settings
from django.utils.dateparse import parse_datetime

from tests.helpers import post

# Transactions commit, as in production: fan-out and backfills run after commit.
pytestmark = pytest.mark.django_db(transaction=True)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def _upload(client, data: bytes = PNG, content_type: str = "image/png"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post("/api/v2/media", {"file": SimpleUploadedFile("a.png", data, content_type=content_type)},
                       format="multipart")


@pytest.mark.parametrize("fmt", ["multipart", "json"])
def test_posting_a_status_answers_the_status(masto, make_user, fmt):
    author, friend = make_user(), make_user()
    text = f"hi @{friend.username} & <b>#news</b> https://example.com/x\n\nbye"
    r = masto(author).post("/api/v1/statuses", {"status": text}, format=fmt)
    assert r.status_code == 200, r.content
    status = r.json()
    assert isinstance(status["id"], str) and status["account"]["id"] == str(author.id)
    assert status["visibility"] == "public" and status["spoiler_text"] == "" and status["sensitive"] is False
    assert status["mentions"] == [{"id": str(friend.id), "username": friend.username, "acct": friend.username,
                                   "url": f"http://testserver/@{friend.username}"}]
    assert status["tags"] == [{"name": "news", "url": "http://testserver/tags/news"}]
    html = status["content"]
    assert html.startswith("<p>hi <span class=\"h-card\">") and "&amp; &lt;b&gt;" in html and "<b>" not in html
    assert 'href="https://example.com/x"' in html and html.endswith("<p>bye</p>")
    assert status["uri"].endswith(f"/statuses/{status['id']}") and status["url"].endswith(f"/{status['id']}")
    assert parse_datetime(status["created_at"]) is not None
    for count in ("replies_count", "reblogs_count", "favourites_count"):
        assert status[count] == 0


def test_the_same_idempotency_key_posts_once(masto, make_user):
    client = masto(make_user())
    first = client.post("/api/v1/statuses", {"status": "once"}, HTTP_IDEMPOTENCY_KEY="k1").json()
    again = client.post("/api/v1/statuses", {"status": "once"}, HTTP_IDEMPOTENCY_KEY="k1").json()
    assert first["id"] == again["id"]
    r = client.post("/api/v1/statuses", {"status": "x"}, HTTP_IDEMPOTENCY_KEY="bad key with spaces")
    assert r.status_code == 422


@pytest.mark.parametrize("body, message", [
    ({"status": ""}, "Validation failed: status: "),  # Mastodon's parameter, not /v1's content
    ({"status": "x" * 281}, "Validation failed: status: Tweets are at most 280"),
    ({"status": "x", "in_reply_to_id": "1"}, "in_reply_to_id is not supported"),
    ({"status": "x", "visibility": "direct"}, "Direct messages"),
    ({"status": "x", "media_ids[]": "nope"}, "Validation failed"),
    ({"status": "x", "media_ids[]": "12345"}, "No such media"),
])
def test_a_bad_status_is_a_422_with_an_error(masto, make_user, body, message):
    r = masto(make_user()).post("/api/v1/statuses", body)
    assert r.status_code == 422 and set(r.json()) == {"error"} and message in r.json()["error"], r.json()


def test_malformed_json_is_a_400_with_an_error(masto, make_user):
    r = masto(make_user()).post("/api/v1/statuses", "{not json", content_type="application/json")
    assert r.status_code == 400 and set(r.json()) == {"error"}


def test_a_status_is_read_and_deleted_by_its_author_only(masto, make_user):
    author, other = make_user(), make_user()
    status = masto(author).post("/api/v1/statuses", {"status": "to go"}).json()
    assert masto(other).get(f"/api/v1/statuses/{status['id']}").json()["content"] == "<p>to go</p>"
    r = masto(other).delete(f"/api/v1/statuses/{status['id']}")
    assert r.status_code == 403 and set(r.json()) == {"error"}
    r = masto(author).delete(f"/api/v1/statuses/{status['id']}")
    assert r.status_code == 200 and r.json()["text"] == "to go"
    r = masto(other).get(f"/api/v1/statuses/{status['id']}")
    assert r.status_code == 404 and r.json() == {"error": "Record not found"}


def test_a_private_accounts_status_is_hidden_from_strangers(masto, make_user):
    hermit, stranger = make_user(is_private=True), make_user()
    status = masto(hermit).post("/api/v1/statuses", {"status": "shh"}).json()
    assert status["visibility"] == "private"
    assert masto(stranger).get(f"/api/v1/statuses/{status['id']}").status_code == 404


def test_media_is_uploaded_to_storage_and_attached(masto, make_user):
    client = masto(make_user())
    r = _upload(client)
    assert r.status_code == 200, r.content
    media = r.json()
    assert media["type"] == "image" and isinstance(media["id"], str)
    assert requests.get(media["url"], timeout=10).content == PNG  # from the S3 endpoint, over HTTP
    status = client.post("/api/v1/statuses", {"media_ids[]": [media["id"]]}).json()
    assert status["media_attachments"][0]["id"] == media["id"]
    # The upload's own URL is signed and short-lived; the status's is its public copy.
    shown = status["media_attachments"][0]["url"]
    assert "/public/" in shown and requests.get(shown, timeout=10).content == PNG
    r = client.post("/api/v1/statuses", {"media_ids[]": [media["id"]]})  # taken already
    assert r.status_code == 409 and set(r.json()) == {"error"}


def test_bad_media_is_refused(masto, make_user):
    client = masto(make_user())
    r = _upload(client, b"MZ\x90\x00", "application/x-msdownload")
    assert r.status_code == 415 and "Unsupported media type 'application/x-msdownload'" in r.json()["error"]
    assert set(r.json()) == {"error"}
    r = client.post("/api/v2/media", {}, format="multipart")
    assert r.status_code == 422 and r.json()["error"] == "Validation failed: file: can't be blank"


def test_a_large_upload_passes_the_body_limit_only_on_the_media_path(masto, make_user):
    client = masto(make_user())
    big = PNG + bytes(200 * 1024)
    assert _upload(client, big).status_code == 200
    r = client.post("/api/v1/statuses", {"status": "x" * (100 * 1024)})
    assert r.status_code == 413


def _link(response, rel: str) -> dict | None:
    from urllib.parse import parse_qs, urlsplit

    for part in response.get("Link", "").split(", "):
        if part.endswith(f'rel="{rel}"'):
            return {k: v[0] for k, v in parse_qs(urlsplit(part.split(">")[0].lstrip("<")).query).items()}
    return None


@override_settings(TIMELINE_MAX_ENTRIES=5, TIMELINE_TRIM_SLACK=0)
def test_the_home_timeline_pages_with_mastodon_semantics(masto, make_user, api):
    author, reader = make_user(), make_user()
    client = masto(reader)
    client.post(f"/api/v1/accounts/{author.id}/follow")
    ids = [post(api(author), f"n{i}") for i in range(12)]  # oldest first
    newest = ids[::-1]

    r = client.get("/api/v1/timelines/home", {"limit": 4})
    assert [s["id"] for s in r.json()] == newest[:4]
    assert _link(r, "next") == {"limit": "4", "max_id": newest[3]}
    assert _link(r, "prev") == {"limit": "4", "min_id": newest[0]}

    # max_id: older, past the 5 cached entries, to the very first tweet.
    seen, params = [], {"limit": 4}
    while params is not None:
        r = client.get("/api/v1/timelines/home", params)
        seen += [s["id"] for s in r.json()]
        params = _link(r, "next")
    assert seen == newest

    # min_id: the page just newer than it (no gap); since_id: the newest page above it.
    r = client.get("/api/v1/timelines/home", {"min_id": ids[2], "limit": 3})
    assert [s["id"] for s in r.json()] == [ids[5], ids[4], ids[3]]
    r = client.get("/api/v1/timelines/home", {"since_id": ids[2], "limit": 3})
    assert [s["id"] for s in r.json()] == newest[:3]
    r = client.get("/api/v1/timelines/home", {"since_id": ids[9]})
    assert [s["id"] for s in r.json()] == [ids[11], ids[10]]
    r = client.get("/api/v1/timelines/home", {"min_id": ids[2], "max_id": ids[5]})
    assert [s["id"] for s in r.json()] == [ids[4], ids[3]]
    r = client.get("/api/v1/timelines/home", {"min_id": newest[0]})
    assert r.json() == [] and "Link" not in r

    # limit: 20 by default, at most 40.
    many = [post(api(author), f"m{i}") for i in range(30)]
    assert len(client.get("/api/v1/timelines/home").json()) == 20
    assert len(client.get("/api/v1/timelines/home", {"limit": 100}).json()) == 40
    assert many
    # The Link header carries the limit the page used, not the one asked for.
    r = client.get("/api/v1/timelines/home", {"limit": 1000})
    assert len(r.json()) == 40 and _link(r, "next")["limit"] == "40" and _link(r, "prev")["limit"] == "40"
    r = client.get("/api/v1/timelines/home", {"limit": -3})
    assert len(r.json()) == 3 and _link(r, "next") == {"limit": "3", "max_id": r.json()[-1]["id"]}


@pytest.mark.parametrize("params", [{"max_id": "abc"}, {"since_id": "-1"}, {"min_id": "0"},
                                    {"limit": "many"}, {"max_id": str(1 << 64)}])
def test_bad_timeline_parameters_are_a_422(masto, make_user, params):
    r = masto(make_user()).get("/api/v1/timelines/home", params)
    assert r.status_code == 422 and set(r.json()) == {"error"}


def test_timeline_reads_carry_mastodons_rate_limit_headers(masto, make_user, settings):
    settings.RATE_LIMIT_TIMELINE = "2/min"
    client = masto(make_user())
    first = client.get("/api/v1/timelines/home")
    assert first["X-RateLimit-Limit"] == "2" and first["X-RateLimit-Remaining"] == "1"
    assert parse_datetime(first["X-RateLimit-Reset"]) is not None  # ISO 8601, as Mastodon sends it
    client.get("/api/v1/timelines/home")
    refused = client.get("/api/v1/timelines/home")
    assert refused.status_code == 429 and set(refused.json()) == {"error"} and refused["Retry-After"]
    assert parse_datetime(refused["X-RateLimit-Reset"]) is not None


def test_posting_counts_against_the_tweet_limit(masto, make_user, settings):
    settings.RATE_LIMIT_TWEETS = "1/min"
    client = masto(make_user())
    assert client.post("/api/v1/statuses", {"status": "a"}).status_code == 200
    assert client.post("/api/v1/statuses", {"status": "b"}).status_code == 429


def test_markers_save_the_read_position_with_versions(masto, make_user, api):
    user = make_user()
    ids = [post(api(user), f"n{i}") for i in range(3)]
    client = masto(user)
    assert client.get("/api/v1/markers", {"timeline[]": "home"}).json() == {}
    r = client.post("/api/v1/markers", {"home": {"last_read_id": ids[0]}}, format="json")
    assert r.status_code == 200 and r.json()["home"]["last_read_id"] == ids[0] and r.json()["home"]["version"] == 0
    r = client.post("/api/v1/markers", {"home[last_read_id]": ids[1]})  # form-encoded, as Mastodon takes it too
    assert r.json()["home"]["version"] == 1
    home = client.get("/api/v1/markers", {"timeline[]": "home"}).json()["home"]
    assert home["last_read_id"] == ids[1] and parse_datetime(home["updated_at"]) is not None
    # An update made against a version that is no longer current: 409.
    r = client.post("/api/v1/markers", {"home": {"last_read_id": ids[2], "version": 0}}, format="json")
    assert r.status_code == 409 and set(r.json()) == {"error"}
    r = client.post("/api/v1/markers", {"home": {"last_read_id": ids[2], "version": 1}}, format="json")
    assert r.status_code == 200 and r.json()["home"]["version"] == 2
    r = client.post("/api/v1/markers", {"home": {"last_read_id": "x"}}, format="json")
    assert r.status_code == 422


def test_the_instance_describes_the_server(anon, db):
    v1 = anon.get("/api/v1/instance").json()
    assert v1["version"].startswith("4.3.0") and v1["configuration"]["statuses"]["max_characters"] == 280
    assert "image/png" in v1["configuration"]["media_attachments"]["supported_mime_types"]
    v2 = anon.get("/api/v2/instance/").json()
    assert v2["configuration"]["statuses"]["max_characters"] == 280
    assert v2["configuration"]["media_attachments"]["image_size_limit"] == 5 * 1024 * 1024
    assert v2["api_versions"] == {"mastodon": 2}


def test_what_this_server_has_none_of_is_an_empty_list(masto, make_user, anon):
    user = make_user()
    client = masto(user)
    for path in ("notifications", "lists", "filters", "announcements", "conversations", "bookmarks",
                 f"accounts/{user.id}/featured_tags"):
        r = client.get(f"/api/v1/{path}")
        assert r.status_code == 200 and r.json() == [], path
    assert anon.get("/api/v1/custom_emojis").json() == []
    assert anon.get("/api/v1/notifications").status_code == 401
    status = client.post("/api/v1/statuses", {"status": "alone"}).json()
    assert client.get(f"/api/v1/statuses/{status['id']}/context").json() == {"ancestors": [], "descendants": []}
    assert client.get("/api/v1/statuses/999999999/context").status_code == 404
    assert client.get("/api/v1/preferences").json()["posting:default:visibility"] == "public"


def test_a_status_with_a_lone_surrogate_or_nul_is_a_400_and_posts_nothing(masto, make_user):
    user = make_user()
    client = masto(user)
    for text in ("a\ud800b", "a\u0000b"):
        r = client.post("/api/v1/statuses", json.dumps({"status": text}), content_type="application/json")
        assert r.status_code == 400 and set(r.json()) == {"error"}, (r.status_code, r.content)
    assert client.post("/api/v1/statuses", {"status": "a\u0000b"}).status_code == 400  # as a form
    assert client.get(f"/api/v1/accounts/{user.id}/statuses").json() == []


def test_a_moderator_deletes_a_private_accounts_status_on_the_mastodon_api_as_on_v1(masto, make_user, moderator_user):
    author, stranger = make_user(is_private=True), make_user()
    status = masto(author).post("/api/v1/statuses", {"status": "reported"}).json()
    assert masto(stranger).delete(f"/api/v1/statuses/{status['id']}").status_code == 404
    r = masto(moderator_user).delete(f"/api/v1/statuses/{status['id']}")
    assert r.status_code == 200 and r.json()["text"] == "reported", r.content
    assert masto(author).get(f"/api/v1/statuses/{status['id']}").status_code == 404
