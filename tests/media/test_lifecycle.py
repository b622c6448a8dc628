"""Media live and die with what shows them, against a real S3 endpoint (moto's server over
HTTP): a claimed upload is a copy nothing but the service writes; a deleted tweet's or
account's objects are deleted after commit; a private or suspended owner's media leave
the public prefix and come back when the account does."""
import io
import json
from datetime import timedelta

import pytest
import requests
from django.core.management import call_command
from django.utils import timezone

from media import services as media_services
from media import storage
from media.models import Media, MediaGarbage
from social import services as social_services
from social.models import User
from tests.helpers import free_port, page
from tweets import services as tweet_services
from tweets.models import Tweet

from .test_media import PNG, post_with_media, presign, upload, uploaded

# Transactions commit, as in production: the storage work runs after commit.
pytestmark = pytest.mark.django_db(transaction=True)

GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"


def fetch(url: str) -> requests.Response:
    return requests.get(url, timeout=10)


def posted_with_media(client) -> tuple[str, Media]:
    media_id = uploaded(client)
    r = post_with_media(client, [media_id])
    assert r.status_code == 201, r.content
    return r.json()["tweet_id"], Media.objects.get(id=int(media_id))


def shown_url(client, tweet_id: str) -> str:
    r = client.get(f"/v1/tweets/{tweet_id}")
    assert r.status_code == 200, r.content
    return r.json()["media"][0]["url"]


def keys_stored(owner_id: int) -> set[str]:
    found = set()
    for prefix in ("uploads/", "public/", "private/", ""):
        listing = storage._client().list_objects_v2(Bucket="timeline-media", Prefix=f"{prefix}{owner_id}/")
        found |= {o["Key"] for o in listing.get("Contents", [])}
    return found


# --- a claimed upload cannot be swapped ------------------------------------------------------------


def test_posting_to_the_presigned_upload_again_after_the_claim_changes_nothing_shown(api, make_user):
    client = api(make_user())
    r = presign(client, "image/png", 1000)
    presigned = r.json()
    assert upload(presigned, PNG).status_code == 204
    tweet_id = post_with_media(client, [presigned["media_id"]]).json()["tweet_id"]
    url = shown_url(client, tweet_id)
    assert fetch(url).content == PNG

    # Still within the hour the presigned POST works: other bytes, same policy.
    assert upload(presigned, b"\x89PNG swapped after review").status_code == 204

    assert fetch(url).content == PNG
    assert fetch(shown_url(client, tweet_id)).content == PNG


def test_the_upload_key_is_let_go_of_at_the_claim_and_again_when_its_policy_expires(api, make_user):
    user = make_user()
    client = api(user)
    tweet_id, media = posted_with_media(client)
    assert keys_stored(user.id) == {f"public/{media.key}"}  # the upload key deleted after commit
    later = MediaGarbage.objects.get(object_key=f"uploads/{media.key}")
    assert later.due_at >= media_services.upload_expires_at(media)

    presigned_again = {"upload": {"url": f"{storage._public_endpoint()}/timeline-media",
                                  "fields": storage.presigned_post(key=f"uploads/{media.key}", content_type="image/png",
                                                                   max_bytes=1000, expires_in=60)["fields"]}}
    assert upload(presigned_again, GIF).status_code == 204  # a late POST leaves an object...
    MediaGarbage.objects.update(due_at=timezone.now())
    media_services.media_purge()
    assert keys_stored(user.id) == {f"public/{media.key}"}  # ...deleted when the policy would have expired
    assert fetch(shown_url(client, tweet_id)).content == PNG


def test_only_the_public_prefix_is_publicly_readable(settings):
    policy = json.loads(storage._client().get_bucket_policy(Bucket="timeline-media")["Policy"])
    assert [s["Resource"] for s in policy["Statement"]] == [["arn:aws:s3:::timeline-media/public/*"]]
    assert all(s["Principal"] == "*" and s["Action"] == ["s3:GetObject"] for s in policy["Statement"])


# --- a deleted tweet's media --------------------------------------------------------------------


def test_deleting_a_tweet_deletes_its_media_from_storage(api, make_user):
    user = make_user()
    client = api(user)
    tweet_id, media = posted_with_media(client)
    url = shown_url(client, tweet_id)
    assert fetch(url).status_code == 200

    assert client.delete(f"/v1/tweets/{tweet_id}").status_code == 204

    assert fetch(url).status_code == 404
    assert keys_stored(user.id) == set()
    assert not Media.objects.filter(id=media.id).exists()
    assert not MediaGarbage.objects.filter(due_at__lte=timezone.now()).exists()


def test_a_moderator_deleting_through_the_mastodon_api_deletes_the_media_too(api, make_user, staff):
    user = make_user()
    tweet_id, _ = posted_with_media(api(user))
    url = shown_url(api(user), tweet_id)

    assert api(staff).delete(f"/api/v1/statuses/{tweet_id}").status_code == 200

    assert fetch(url).status_code == 404 and keys_stored(user.id) == set()


def test_a_deletion_storage_refused_is_retried_until_done(api, make_user, settings):
    user = make_user()
    client = api(user)
    tweet_id, media = posted_with_media(client)
    url = shown_url(client, tweet_id)
    live_endpoint = settings.AWS_S3_ENDPOINT_URL
    settings.AWS_S3_ENDPOINT_URL = f"http://127.0.0.1:{free_port()}"

    tweet_services.tweet_delete(tweet_id=int(tweet_id), actor=user)  # committed; storage down after

    assert MediaGarbage.objects.filter(object_key=f"public/{media.key}").exists()
    settings.AWS_S3_ENDPOINT_URL = live_endpoint
    assert fetch(url).status_code == 200  # not yet...
    tweet_services.media_reconcile()  # ...the periodic run retries
    assert fetch(url).status_code == 404
    assert not MediaGarbage.objects.filter(object_key=f"public/{media.key}").exists()


def test_the_reconciler_deletes_the_media_of_tweets_deleted_around_the_service(api, make_user):
    user = make_user()
    client = api(user)
    tweet_id, media = posted_with_media(client)
    url = shown_url(client, tweet_id)
    Tweet.objects.filter(id=int(tweet_id)).update(deleted_at=timezone.now())  # the admin, SQL

    assert tweet_services.media_reconcile() == 1

    assert fetch(url).status_code == 404 and not Media.objects.filter(id=media.id).exists()


def test_deleting_an_account_deletes_its_media_from_storage(api, make_user):
    user = make_user()
    client = api(user)
    posted_with_media(client)
    uploaded(client)  # and one no tweet took yet
    assert len(keys_stored(user.id)) == 2

    User.objects.get(id=user.id).delete()

    assert keys_stored(user.id) == set()
    assert not MediaGarbage.objects.filter(due_at__lte=timezone.now()).exists()


# --- suspended and private owners -------------------------------------------------------------------


def test_a_suspended_users_media_leave_public_reach_and_come_back_when_reinstated(api, make_user):
    user = make_user()
    tweet_id, media = posted_with_media(api(user))
    public = shown_url(api(user), tweet_id)
    assert fetch(public).content == PNG

    social_services.user_suspend(user_id=user.id)

    assert fetch(public).status_code == 404
    assert keys_stored(user.id) == {f"private/{media.key}"}
    assert Media.objects.get(id=media.id).placement == "private"

    social_services.user_reinstate(user_id=user.id)

    assert fetch(public).content == PNG
    assert shown_url(api(user), tweet_id) == public
    assert keys_stored(user.id) == {f"public/{media.key}"}


def test_a_private_accounts_media_are_served_through_short_lived_signed_urls(api, make_user, settings):
    author, follower = make_user(), make_user()
    tweet_id, media = posted_with_media(api(author))
    public = shown_url(api(author), tweet_id)

    social_services.user_update(user=author, is_private=True)
    social_services.follow_create(follower=follower, followee_id=author.id)
    social_services.follow_request_approve(followee=author, follower_id=follower.id)

    assert fetch(public).status_code == 404
    signed = shown_url(api(follower), tweet_id)
    assert signed.startswith(f"{settings.AWS_S3_ENDPOINT_URL}/timeline-media/private/{media.key}?")
    assert "X-Amz-Expires=1200" in signed and "X-Amz-Signature=" in signed
    assert fetch(signed).content == PNG
    timeline = page(api(follower))["data"]
    assert timeline[0]["media"][0]["url"].split("?")[0] == signed.split("?")[0]

    settings.MEDIA_CDN_URL = "https://cdn.example.test/m"
    assert shown_url(api(follower), tweet_id).startswith(f"https://cdn.example.test/m/private/{media.key}?X-Amz-")

    settings.MEDIA_CDN_URL = ""
    social_services.user_update(user=author, is_private=False)

    assert fetch(public).content == PNG
    assert shown_url(api(follower), tweet_id) == public


def test_a_private_account_posts_its_media_straight_to_the_private_prefix(api, make_user):
    author = make_user(is_private=True)
    tweet_id, media = posted_with_media(api(author))
    assert Media.objects.get(id=media.id).placement == "private"
    assert keys_stored(author.id) == {f"private/{media.key}"}
    assert fetch(storage.public_url(media.key)).status_code == 404
    assert fetch(shown_url(api(author), tweet_id)).content == PNG


def test_the_reconciler_places_media_whose_owner_changed_around_the_services(api, make_user):
    user = make_user()
    tweet_id, media = posted_with_media(api(user))
    public = shown_url(api(user), tweet_id)
    User.objects.filter(id=user.id).update(is_private=True)  # SQL: no task was sent

    assert fetch(public).status_code == 200
    assert tweet_services.media_reconcile() == 1
    assert fetch(public).status_code == 404
    assert tweet_services.media_reconcile() == 0


def test_media_stored_before_the_prefixes_are_moved_under_them(api, make_user):
    user = make_user()
    tweet_id, media = posted_with_media(api(user))
    storage.copy(f"public/{media.key}", media.key)  # as an older version stored it
    storage.delete([f"public/{media.key}"])
    Media.objects.filter(id=media.id).update(placement="legacy")

    assert tweet_services.media_reconcile() == 1

    assert keys_stored(user.id) == {f"public/{media.key}"}
    assert fetch(shown_url(api(user), tweet_id)).content == PNG


def test_the_media_reconcile_command_moves_every_legacy_object_at_once_with_progress(api, make_user):
    user = make_user()
    posted = [posted_with_media(api(user)) for _ in range(3)]
    for _, media in posted:
        storage.copy(f"public/{media.key}", media.key)
        storage.delete([f"public/{media.key}"])
    Media.objects.filter(id__in=[media.id for _, media in posted]).update(placement="legacy")
    out = io.StringIO()

    call_command("media_reconcile", batch=1, stdout=out)

    assert keys_stored(user.id) == {f"public/{media.key}" for _, media in posted}
    *progress, done = out.getvalue().splitlines()
    assert progress and progress[-1] == "  3 media placed or deleted so far ..."
    assert done == "done: 3 media placed or deleted"


def test_the_sweeper_also_deletes_a_copy_a_rolled_back_claim_left(api, make_user):
    user = make_user()
    client = api(user)
    media_id = uploaded(client)
    media = Media.objects.get(id=int(media_id))
    storage.copy(f"uploads/{media.key}", f"public/{media.key}")  # a claim whose post then rolled back
    Media.objects.filter(id=media.id).update(created_at=timezone.now() - timedelta(days=2))

    assert media_services.media_sweep() == 1

    assert keys_stored(user.id) == set()
