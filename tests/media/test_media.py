"""Media the sidecar way (SPEC §5, §6): presigned POSTs straight to a real S3 endpoint,
attached to tweets only when really uploaded within what was presigned, shown on
the tweet object, swept when never attached."""
import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.utils import timezone

from media import services, storage
from media.models import Media
from tests.helpers import free_port, page
from tweets import cache as tweet_cache
from tweets.models import Tweet

pytestmark = pytest.mark.django_db

# A real 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def presign(client, content_type="image/png", size_bytes=len(PNG)):
    return client.post("/v1/media", {"content_type": content_type, "size_bytes": size_bytes}, format="json")


def upload(presigned: dict, body: bytes, **field_overrides) -> requests.Response:
    """POST the file to the presigned URL as a browser form would, straight to object storage."""
    fields = {**presigned["upload"]["fields"], **field_overrides}
    return requests.post(presigned["upload"]["url"], data=fields, files={"file": ("f", body)}, timeout=10)


def uploaded(client, body=PNG, content_type="image/png") -> str:
    """Presign and upload ``body``; the media id."""
    r = presign(client, content_type, len(body))
    assert r.status_code == 201, r.content
    assert upload(r.json(), body).status_code in (200, 201, 204)
    return r.json()["media_id"]


def post_with_media(client, media_ids, content="", **headers):
    return client.post("/v1/tweets", {"content": content, "media_ids": media_ids}, format="json", **headers)


# --- presigning ----------------------------------------------------------------------------


def test_presigned_policy_pins_the_key_the_type_and_the_size(api, make_user, settings):
    user = make_user()
    before = timezone.now()
    r = presign(api(user), "image/jpeg", 1234)

    assert r.status_code == 201, r.content
    body = r.json()
    media = Media.objects.get(id=int(body["media_id"]))
    assert media.owner_id == user.id and media.tweet_id is None
    fields = body["upload"]["fields"]
    assert fields["key"] == f"uploads/{media.key}" and fields["Content-Type"] == "image/jpeg"
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert {"Content-Type": "image/jpeg"} in conditions
    assert ["content-length-range", 1, 1234] in conditions
    assert {"key": f"uploads/{media.key}"} in conditions
    assert {"bucket": "timeline-media"} in conditions
    assert policy["expiration"][:19] == body["expires_at"][:19]
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert before + timedelta(hours=1) <= expires_at <= timezone.now() + timedelta(hours=1)
    assert body["upload"]["url"] == f"{settings.AWS_S3_ENDPOINT_URL}/timeline-media"


@pytest.mark.parametrize("body, field", [
    ({"content_type": "image/svg+xml", "size_bytes": 10}, "content_type"),
    ({"content_type": "text/html", "size_bytes": 10}, "content_type"),
    ({"content_type": "image/png", "size_bytes": 5 * 1024 * 1024 + 1}, "size_bytes"),
    ({"content_type": "video/mp4", "size_bytes": 512 * 1024 * 1024 + 1}, "size_bytes"),
    ({"content_type": "image/png", "size_bytes": 0}, "size_bytes"),
    ({"content_type": "image/png", "size_bytes": "ten"}, "size_bytes"),
    ({"content_type": "image/png"}, "size_bytes"),
    ({"size_bytes": 10}, "content_type"),
    ({"content_type": 5, "size_bytes": 10}, "content_type"),
])
def test_types_and_sizes_outside_the_rules_are_400(api, make_user, body, field):
    r = api(make_user()).post("/v1/media", body, format="json")
    assert r.status_code == 400, r.content
    assert field in r.json()
    assert not Media.objects.exists()


@pytest.mark.parametrize("content_type, size", [("image/gif", 5 * 1024 * 1024), ("image/webp", 1),
                                                 ("video/mp4", 512 * 1024 * 1024)])
def test_the_largest_allowed_sizes_are_presigned(api, make_user, content_type, size):
    assert presign(api(make_user()), content_type, size).status_code == 201


def test_presigning_needs_a_signed_in_user(anon):
    assert presign(anon).status_code == 401


# --- the round trip -------------------------------------------------------------------------


def test_a_tweet_carries_its_uploaded_media_everywhere_and_the_url_serves_the_bytes(api, make_user):
    author = make_user()
    client = api(author)
    media_id = uploaded(client)

    r = post_with_media(client, [media_id])  # blank text is fine with media

    assert r.status_code == 201, r.content
    tweet_id = r.json()["tweet_id"]
    shown = client.get(f"/v1/tweets/{tweet_id}").json()
    assert [(m["media_id"], m["content_type"]) for m in shown["media"]] == [(media_id, "image/png")]
    fetched = requests.get(shown["media"][0]["url"], timeout=10)
    assert fetched.status_code == 200 and fetched.content == PNG
    timeline = page(client)["data"]
    assert [t["tweet_id"] for t in timeline] == [tweet_id]
    assert timeline[0]["media"] == shown["media"]
    assert Media.objects.get(id=int(media_id)).tweet_id == int(tweet_id)


def test_media_keep_the_order_given_and_at_most_four_are_attached(api, make_user):
    client = api(make_user())
    first = [uploaded(client) for _ in range(5)]

    too_many = post_with_media(client, first)
    assert too_many.status_code == 400 and "media_ids" in too_many.json()

    order = [first[2], first[0], first[3], first[1]]
    r = post_with_media(client, order, content="four")
    assert r.status_code == 201, r.content
    shown = client.get(f"/v1/tweets/{r.json()['tweet_id']}").json()
    assert [m["media_id"] for m in shown["media"]] == order


def test_the_cdn_url_setting_moves_where_media_are_served_from(api, make_user, settings):
    settings.MEDIA_CDN_URL = "https://cdn.example.test/m/"
    client = api(make_user())
    media_id = uploaded(client)
    tweet_id = post_with_media(client, [media_id]).json()["tweet_id"]

    key = Media.objects.get(id=int(media_id)).key
    assert client.get(f"/v1/tweets/{tweet_id}").json()["media"][0]["url"] == f"https://cdn.example.test/m/public/{key}"


def test_a_new_cdn_url_reaches_tweets_already_cached_without_a_flush(api, make_user, settings, redis):
    settings.MEDIA_CDN_URL = "https://old-cdn.example.test/"
    client = api(make_user())
    media_id = uploaded(client)
    tweet_id = post_with_media(client, [media_id]).json()["tweet_id"]
    key = Media.objects.get(id=int(media_id)).key
    assert page(client)["data"][0]["media"][0]["url"] == f"https://old-cdn.example.test/public/{key}"
    cached = redis.get(tweet_cache._key(int(tweet_id)))
    assert cached and b"old-cdn" not in cached  # the entry holds the key, not the URL

    settings.MEDIA_CDN_URL = "https://new-cdn.example.test/"

    assert page(client)["data"][0]["media"][0]["url"] == f"https://new-cdn.example.test/public/{key}"
    assert client.get(f"/v1/tweets/{tweet_id}").json()["media"][0]["url"] == f"https://new-cdn.example.test/public/{key}"
    assert redis.get(tweet_cache._key(int(tweet_id))) == cached  # read from the same entry, not refilled


# --- refusals at attach time: each one a 4xx, and nothing written --------------------------------


def assert_refused(client, author, media_ids, status, needle):
    r = post_with_media(client, media_ids, content="with media")
    assert r.status_code == status, r.content
    assert needle in json.dumps(r.json())
    assert not Tweet.objects.filter(author=author).exists()
    assert not Media.objects.filter(tweet_id__isnull=False, owner=author).exists()


def test_an_upload_larger_than_presigned_is_refused(api, make_user):
    author = make_user()
    client = api(author)
    r = presign(client, "image/png", 10)
    # The local endpoint takes it, as an emulator may (real S3 refuses it at upload).
    upload(r.json(), PNG)
    assert storage.head(f"uploads/{Media.objects.get(id=int(r.json()['media_id'])).key}").size_bytes == len(PNG)

    assert_refused(client, author, [r.json()["media_id"]], 400, "more than the 10 presigned")


def test_an_upload_of_another_type_than_presigned_is_refused(api, make_user):
    author = make_user()
    client = api(author)
    r = presign(client, "image/png")
    upload(r.json(), PNG, **{"Content-Type": "text/html"})

    assert_refused(client, author, [r.json()["media_id"]], 400, "uploaded as text/html")


def test_someone_elses_media_is_refused_as_unknown(api, make_user):
    author, other = make_user(), make_user()
    theirs = uploaded(api(other))

    assert_refused(api(author), author, [theirs], 400, f"No such media: {theirs}")
    assert Media.objects.get(id=int(theirs)).tweet_id is None


def test_a_media_id_never_uploaded_is_refused(api, make_user):
    author = make_user()
    client = api(author)
    never = presign(client).json()["media_id"]

    assert_refused(client, author, [never], 400, "has not been uploaded yet")
    assert_refused(client, author, ["999999999"], 400, "No such media")
    assert_refused(client, author, ["abc"], 400, "media_ids")


def test_media_already_on_a_tweet_is_refused(api, make_user):
    author = make_user()
    client = api(author)
    media_id = uploaded(client)
    first = post_with_media(client, [media_id])
    assert first.status_code == 201

    second = post_with_media(client, [media_id], content="again")
    assert second.status_code == 409, second.content
    assert "already attached" in second.json()["detail"]
    assert Tweet.objects.filter(author=author).count() == 1
    assert Media.objects.get(id=int(media_id)).tweet_id == int(first.json()["tweet_id"])


def test_one_bad_media_refuses_the_whole_tweet(api, make_user):
    author = make_user()
    client = api(author)
    good, never = uploaded(client), presign(client).json()["media_id"]

    assert_refused(client, author, [good, never], 400, "has not been uploaded yet")
    assert Media.objects.get(id=int(good)).tweet_id is None
    assert post_with_media(client, [good]).status_code == 201


def test_the_same_media_twice_in_one_tweet_is_refused(api, make_user):
    author = make_user()
    client = api(author)
    media_id = uploaded(client)
    assert_refused(client, author, [media_id, media_id], 400, "listed twice")


def test_a_blank_tweet_without_media_is_still_refused(api, make_user):
    author = make_user()
    r = api(author).post("/v1/tweets", {"content": "  ", "media_ids": []}, format="json")
    assert r.status_code == 400 and "content" in r.json()


def test_storage_down_at_attach_time_is_503_and_writes_nothing(api, make_user, settings):
    author = make_user()
    client = api(author)
    media_id = uploaded(client)
    settings.AWS_S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"

    assert_refused(client, author, [media_id], 503, "Object storage is unavailable")


def test_readyz_names_object_storage_when_it_does_not_answer(anon, settings):
    assert anon.get("/readyz").status_code == 200
    settings.AWS_S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"

    r = anon.get("/readyz")

    assert r.status_code == 503 and r.json()["failing"] == ["s3"]


# --- sweeping uploads no tweet took -----------------------------------------------------------


def test_the_sweeper_deletes_old_unattached_uploads_object_and_record(api, make_user):
    client = api(make_user())
    old_unattached, young_unattached, attached = uploaded(client), uploaded(client), uploaded(client)
    assert post_with_media(client, [attached]).status_code == 201
    a_day_ago = timezone.now() - timedelta(days=1, minutes=1)
    Media.objects.filter(id__in=[int(old_unattached), int(attached)]).update(created_at=a_day_ago)
    keys = dict(Media.objects.values_list("id", "key"))

    assert services.media_sweep() == 1

    assert set(Media.objects.values_list("id", flat=True)) == {int(young_unattached), int(attached)}
    assert storage.head(f"uploads/{keys[int(old_unattached)]}") is None
    assert storage.head(f"uploads/{keys[int(young_unattached)]}") is not None
    assert storage.head(f"public/{keys[int(attached)]}") is not None


def test_uploads_and_media_urls_name_the_endpoint_as_clients_reach_it(api, make_user, settings):
    # Signed through one address, used through another (a container's inside and outside).
    settings.AWS_S3_PUBLIC_ENDPOINT_URL = settings.AWS_S3_ENDPOINT_URL.replace("127.0.0.1", "localhost")
    client = api(make_user())
    r = presign(client)
    assert r.json()["upload"]["url"] == f"{settings.AWS_S3_PUBLIC_ENDPOINT_URL}/timeline-media"
    assert upload(r.json(), PNG).status_code == 204

    tweet_id = post_with_media(client, [r.json()["media_id"]]).json()["tweet_id"]
    url = client.get(f"/v1/tweets/{tweet_id}").json()["media"][0]["url"]
    assert url.startswith(f"{settings.AWS_S3_PUBLIC_ENDPOINT_URL}/timeline-media/public/")
    assert requests.get(url, timeout=10).content == PNG


# --- signed URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["private/7/abc-_~.png", "private/7/a b+c%.png"])
def test_signed_urls_are_the_ones_boto3_presigns_at_the_start_of_their_window(settings, monkeypatch, key):
    import boto3
    import botocore.auth
    from botocore.config import Config

    now = 1_800_000_123
    window_start = now // 300 * 300  # a third of 900 s
    monkeypatch.setattr(botocore.auth, "get_current_datetime",
                        lambda: datetime.fromtimestamp(window_start, tz=UTC).replace(tzinfo=None))
    boto = boto3.client("s3", endpoint_url=settings.AWS_S3_ENDPOINT_URL, region_name=settings.AWS_S3_REGION_NAME,
                        aws_access_key_id=settings.AWS_ACCESS_KEY_ID,
                        aws_secret_access_key=settings.AWS_SECRET_ACCESS_KEY,
                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
    expected = boto.generate_presigned_url("get_object", ExpiresIn=1200,
                                           Params={"Bucket": "timeline-media", "Key": key})

    assert storage.signed_url(key, expires_in=900, now=now) == expected
    assert storage.signed_url(key, expires_in=900, now=window_start + 299) == expected  # the same all window
    assert storage.signed_url(key, expires_in=900, now=window_start + 300) != expected
