"""Uploads through the API (the Mastodon API's ``POST /api/v2/media``) and the limits of
both media endpoints: refused from the headers before the body is read, streamed to a
real S3 endpoint (moto's server over HTTP) under a hard cap, outside any transaction,
rate-limited per user, and held to a per-user quota."""
import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from media import storage
from media.models import Media

# Transactions commit, as in production: the upload must not run inside one.
pytestmark = pytest.mark.django_db(transaction=True)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
IMAGE_MAX = 5 * 1024 * 1024


def upload(client, data: bytes = PNG, content_type: str = "image/png", **extra):
    return client.post("/api/v2/media", {"file": SimpleUploadedFile("a.png", data, content_type=content_type)},
                       format="multipart", **extra)


def raw_post(client, body: bytes, *, content_type: str = MULTIPART_CONTENT, **meta):
    """POST ``body`` as it is, with the headers given (``CONTENT_LENGTH`` may claim more
    than is sent: the test client's input refuses to be read past what it holds)."""
    return client.generic("POST", "/api/v2/media", body, content_type=content_type, **meta)


def stored_uploads(owner_id: int) -> list[str]:
    listing = storage._client().list_objects_v2(Bucket="timeline-media", Prefix=f"uploads/{owner_id}/")
    return [o["Key"] for o in listing.get("Contents", [])]


def assert_mastodon_refusal(r, status: int, needle: str):
    assert r.status_code == status, r.content
    assert set(r.json()) == {"error"} and needle in r.json()["error"], r.json()


# --- refused from the headers, before the body is read ---------------------------------------


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "application/json", "image/png"])
def test_a_body_that_is_not_multipart_is_415_before_it_is_read(api, make_user, content_type):
    user = make_user()
    # The body claims more than it holds: reading it would fail the test client's input.
    r = raw_post(api(user), b"x" * 10, content_type=content_type, CONTENT_LENGTH="100000")
    assert_mastodon_refusal(r, 415, "multipart/form-data")
    assert not Media.objects.exists()


def test_an_upload_over_the_quota_left_is_413_from_its_content_length_alone(api, make_user, settings):
    settings.MEDIA_QUOTA_BYTES = 100_000
    user = make_user()
    r = raw_post(api(user), b"--" + BOUNDARY.encode(), CONTENT_LENGTH=str(100_000 + 64 * 1024 + 1))
    assert_mastodon_refusal(r, 413, "quota")
    assert not Media.objects.exists()


def test_a_body_over_the_largest_medium_is_413_in_mastodons_shape(api, make_user):
    r = raw_post(api(make_user()), b"--", CONTENT_LENGTH=str(512 * 1024 * 1024 + 64 * 1024 + 1))
    assert_mastodon_refusal(r, 413, "larger than")


def test_an_upload_without_a_content_length_is_411(api, make_user):
    body = encode_multipart(BOUNDARY, {"file": SimpleUploadedFile("a.png", PNG, content_type="image/png")})
    r = raw_post(api(make_user()), body, CONTENT_LENGTH="")
    assert_mastodon_refusal(r, 411, "Content-Length")


# --- refused as the part arrives, nothing left in storage --------------------------------------


def test_a_part_declaring_a_type_not_allowed_is_415_and_nothing_is_stored(api, make_user):
    user = make_user()
    r = upload(api(user), b"<svg/>", "image/svg+xml")
    assert_mastodon_refusal(r, 415, "Unsupported media type 'image/svg+xml'")
    assert not Media.objects.exists() and stored_uploads(user.id) == []


def test_bytes_past_the_types_largest_size_are_413_as_they_stream_and_nothing_is_stored(api, make_user):
    user = make_user()
    r = upload(api(user), PNG + bytes(IMAGE_MAX))  # one part of a multipart upload sent, then refused
    assert_mastodon_refusal(r, 413, f"image/png uploads are at most {IMAGE_MAX} bytes")
    assert not Media.objects.exists() and stored_uploads(user.id) == []
    assert storage._client().list_multipart_uploads(Bucket="timeline-media").get("Uploads", []) == []


def test_bytes_past_the_quota_left_are_413_as_they_stream(api, make_user, settings):
    settings.MEDIA_QUOTA_BYTES = 10_000
    user = make_user()
    r = upload(api(user), PNG + bytes(20_000))  # under quota + envelope by its length, over it by its bytes
    assert_mastodon_refusal(r, 413, "quota")
    assert not Media.objects.exists() and stored_uploads(user.id) == []


def test_another_field_carrying_a_file_is_refused(api, make_user):
    user = make_user()
    r = api(user).post("/api/v2/media", {"avatar": SimpleUploadedFile("a.png", PNG, content_type="image/png")},
                       format="multipart")
    assert_mastodon_refusal(r, 422, 'in the field "file"')
    assert stored_uploads(user.id) == []


# --- streamed, outside any transaction -----------------------------------------------------------


def test_a_video_larger_than_a_part_is_streamed_in_parts_and_reads_back_whole(api, make_user):
    user = make_user()
    video = bytes(range(256)) * (9 * 1024 * 1024 // 256 + 7)  # over one 8 MiB part

    r = upload(api(user), video, "video/mp4")

    assert r.status_code == 200, r.content
    media = Media.objects.get(id=int(r.json()["id"]))
    assert (media.size_bytes, media.content_type, media.placement) == (len(video), "video/mp4", "upload")
    assert requests.get(r.json()["url"], timeout=30).content == video


def test_the_bytes_are_stored_before_and_outside_any_transaction(api, make_user, monkeypatch):
    seen = []
    finish = storage.StreamingUpload.finish

    def noting(self):
        seen.append(transaction.get_connection().in_atomic_block)
        return finish(self)

    monkeypatch.setattr(storage.StreamingUpload, "finish", noting)
    assert upload(api(make_user())).status_code == 200
    assert seen == [False]


def test_storage_down_while_streaming_is_503_and_records_nothing(api, make_user, settings):
    from tests.helpers import free_port

    settings.AWS_S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"
    r = upload(api(make_user()))
    assert_mastodon_refusal(r, 503, "Object storage is unavailable")
    assert not Media.objects.exists()


def test_an_upload_is_shown_to_its_uploader_at_a_signed_url_only(api, make_user):
    r = upload(api(make_user()))
    url = r.json()["url"]
    assert "/uploads/" in url and "X-Amz-Signature=" in url and "X-Amz-Expires=1200" in url
    assert requests.get(url, timeout=10).content == PNG


# --- the rate limit and the quota of both endpoints ------------------------------------------------


def test_media_uploads_are_rate_limited_per_user_on_both_endpoints(api, make_user, settings):
    settings.RATE_LIMIT_MEDIA = "2/hour"
    user, other = make_user(), make_user()
    client = api(user)
    assert upload(client).status_code == 200
    assert client.post("/v1/media", {"content_type": "image/png", "size_bytes": 10}, format="json").status_code == 201

    refused = upload(client)
    assert_mastodon_refusal(refused, 429, "")
    assert int(refused["Retry-After"]) > 0
    presign = client.post("/v1/media", {"content_type": "image/png", "size_bytes": 10}, format="json")
    assert presign.status_code == 429 and int(presign["Retry-After"]) > 0
    assert Media.objects.filter(owner=user).count() == 2
    assert upload(api(other)).status_code == 200  # per user


def test_the_quota_counts_what_the_user_holds_on_both_endpoints(api, make_user, settings):
    settings.MEDIA_QUOTA_BYTES = 1000
    user = make_user()
    client = api(user)
    assert client.post("/v1/media", {"content_type": "image/png", "size_bytes": 900}, format="json").status_code == 201

    presign = client.post("/v1/media", {"content_type": "image/png", "size_bytes": 101}, format="json")
    assert presign.status_code == 413, presign.content
    assert "quota exceeded: 100 of 1000 bytes left" in presign.json()["detail"]
    assert_mastodon_refusal(upload(client, PNG + bytes(100)), 413, "quota")
    assert upload(client, PNG[:50]).status_code == 200  # what still fits
    assert Media.objects.filter(owner=user).count() == 2
