"""Every write to media: presigning an upload, claiming uploads for a tweet, sweeping unclaimed ones.

The bytes never pass through the API. ``media_create`` records the upload and
returns a presigned S3 POST whose policy pins the key, the type and the size;
the client posts the file straight to the bucket. A tweet then claims its
uploads (``media_claim``, ``media_attach``), each checked with a HEAD of the
object, because a local S3 emulator accepts uploads that break the policy.
"""
import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.exceptions import Conflict, Unavailable

from . import storage
from .models import Media

logger = logging.getLogger(__name__)

# The types a tweet may carry, each with its largest size and the key's extension.
ALLOWED_TYPES = {
    "image/jpeg": (settings.MEDIA_IMAGE_MAX_BYTES, "jpg"),
    "image/png": (settings.MEDIA_IMAGE_MAX_BYTES, "png"),
    "image/gif": (settings.MEDIA_IMAGE_MAX_BYTES, "gif"),
    "image/webp": (settings.MEDIA_IMAGE_MAX_BYTES, "webp"),
    "video/mp4": (settings.MEDIA_VIDEO_MAX_BYTES, "mp4"),
}
# The most media one tweet carries (POST /v1/tweets, Mastodon's max_media_attachments).
MAX_MEDIA_PER_TWEET = 4


def _media_record(*, owner_id: int, content_type: str, size_bytes: int) -> Media:
    """Check the type and size of an upload to be, and record it under a fresh key."""
    if content_type not in ALLOWED_TYPES:
        raise ValidationError({"content_type": [f"Allowed types: {', '.join(ALLOWED_TYPES)}."]})
    limit, extension = ALLOWED_TYPES[content_type]
    if not 1 <= size_bytes <= limit:
        raise ValidationError({"size_bytes": [f"{content_type} uploads are 1 to {limit} bytes."]})
    key = f"{owner_id}/{secrets.token_urlsafe(16)}.{extension}"
    return Media.objects.create(owner_id=owner_id, key=key, content_type=content_type, size_bytes=size_bytes)


def media_create(*, owner_id: int, content_type: str, size_bytes: int) -> tuple[Media, dict]:
    """Record an upload of at most ``size_bytes`` of ``content_type`` and presign its POST.

    Returns the record and boto3's ``{"url", "fields"}``.
    """
    media = _media_record(owner_id=owner_id, content_type=content_type, size_bytes=size_bytes)
    upload = storage.presigned_post(key=media.key, content_type=content_type, max_bytes=size_bytes,
                                    expires_in=settings.MEDIA_UPLOAD_EXPIRES_SECONDS)
    return media, upload


def media_upload(*, owner_id: int, content_type: str, size_bytes: int, fileobj) -> Media:
    """Record an upload and stream its bytes to object storage through the server (the
    Mastodon API's multipart ``POST /api/v2/media``): the same types and sizes as a
    presigned upload, and the same claim (``media_claim``, a HEAD) when a tweet takes it.
    Nothing is recorded if storage refuses it."""
    with transaction.atomic():
        media = _media_record(owner_id=owner_id, content_type=content_type, size_bytes=size_bytes)
        try:
            storage.upload(key=media.key, fileobj=fileobj, content_type=content_type)
        except storage.StorageUnavailable:
            logger.warning("object storage unavailable storing media %s", media.id, exc_info=True)
            raise Unavailable("Object storage is unavailable, try again shortly.") from None
    return media


def upload_expires_at(media: Media) -> datetime:
    """When ``media``'s presigned upload stops working."""
    return media.created_at + timedelta(seconds=settings.MEDIA_UPLOAD_EXPIRES_SECONDS)


def media_claim(*, owner_id: int, media_ids: list[int]) -> list[Media]:
    """Lock ``media_ids`` for a tweet about to be posted, checking each one: the owner's,
    not attached yet, and really uploaded within its presigned type and size.

    Call it inside the posting transaction, then ``media_attach``: the row locks
    keep a second tweet from taking the same upload in between. Returns the
    records in the order given.
    """
    if len(media_ids) > MAX_MEDIA_PER_TWEET:
        raise ValidationError({"media_ids": [f"A tweet carries at most {MAX_MEDIA_PER_TWEET} media."]})
    if len(set(media_ids)) != len(media_ids):
        raise ValidationError({"media_ids": ["The same media is listed twice."]})
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("media_claim must run inside the posting transaction")
    locked = Media.objects.select_for_update().filter(id__in=media_ids, owner_id=owner_id).order_by("id")
    found = {m.id: m for m in locked}
    claimed = []
    for media_id in media_ids:
        media = found.get(media_id)
        if media is None:  # someone else's reads the same as none at all
            raise ValidationError({"media_ids": [f"No such media: {media_id}."]})
        if media.tweet_id is not None:
            raise Conflict(f"Media {media_id} is already attached to a tweet.")
        _check_uploaded(media)
        claimed.append(media)
    return claimed


def _check_uploaded(media: Media) -> None:
    try:
        stored = storage.head(media.key)
    except storage.StorageUnavailable:
        logger.warning("object storage unavailable checking media %s", media.id, exc_info=True)
        raise Unavailable("Object storage is unavailable, try again shortly.") from None
    if stored is None:
        raise ValidationError({"media_ids": [f"Media {media.id} has not been uploaded yet."]})
    if stored.content_type != media.content_type:
        raise ValidationError({"media_ids": [
            f"Media {media.id} was uploaded as {stored.content_type or 'no type'}, not {media.content_type}."]})
    if not 1 <= stored.size_bytes <= media.size_bytes:
        raise ValidationError({"media_ids": [
            f"Media {media.id} is {stored.size_bytes} bytes, more than the {media.size_bytes} presigned."]})


def media_attach(*, media: list[Media], tweet_id: int) -> list[dict]:
    """Attach claimed uploads to ``tweet_id``; what the tweet stores of each."""
    Media.objects.filter(id__in=[m.id for m in media]).update(tweet_id=tweet_id)
    return [{"media_id": str(m.id), "key": m.key, "content_type": m.content_type} for m in media]


def media_sweep(*, batch_size: int = 500) -> int:
    """Delete uploads no tweet attached within ``MEDIA_UNATTACHED_MAX_AGE_SECONDS``:
    the objects first, then their records. Returns how many went."""
    cutoff = timezone.now() - timedelta(seconds=settings.MEDIA_UNATTACHED_MAX_AGE_SECONDS)
    swept = 0
    while True:
        with transaction.atomic():
            # SKIP LOCKED: an upload a tweet is claiming right now is not ours to take.
            batch = list(
                Media.objects.select_for_update(skip_locked=True)
                .filter(tweet_id__isnull=True, created_at__lt=cutoff)
                .order_by("created_at")[:batch_size]
            )
            if not batch:
                return swept
            # Objects before records: if the delete fails, the records stay for the next sweep.
            storage.delete([m.key for m in batch])
            Media.objects.filter(id__in=[m.id for m in batch]).delete()
            swept += len(batch)
            logger.info("swept %d unattached uploads", len(batch))
