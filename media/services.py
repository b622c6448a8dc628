"""Every write to media: presigning an upload, claiming uploads for a tweet, placing and
deleting what tweets let go of, sweeping unclaimed uploads.

The bytes of a presigned upload never pass through the API. ``media_create`` records
the upload and returns a presigned S3 POST whose policy pins the key (under
``uploads/``), the type and the size; the client posts the file straight to the
bucket. A tweet then claims its uploads (``media_claim``, ``media_attach``): each
is copied to its key under ``public/`` or ``private/``, which no presigned policy
names, and checked there with a HEAD (a local S3 emulator accepts uploads that break
the policy), so what was checked is what is shown, whatever is posted to the upload
key later. Whatever a tweet or an owner lets go of is written down as
``MediaGarbage`` in the same transaction and deleted from storage after commit
(``media_purge``, retried until done).
"""
import logging
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from core.exceptions import ApplicationError, Conflict, NotFound, Unavailable

from . import storage
from .models import DESCRIPTION_MAX_LENGTH, Media, MediaGarbage

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
# The task that deletes due garbage (``tasks.media_purge_task``), sent after commit.
PURGE_TASK = "media.purge"

Placement = Media.Placement


class QuotaExceeded(ApplicationError):
    status_code = 413


def media_quota_left(owner_id: int) -> int:
    """How many more bytes ``owner_id`` may store (``MEDIA_QUOTA_BYTES`` less what they hold)."""
    held = Media.objects.filter(owner_id=owner_id).aggregate(held=Sum("size_bytes"))["held"] or 0
    return settings.MEDIA_QUOTA_BYTES - held


def _quota_check(*, owner_id: int, size_bytes: int) -> None:
    left = media_quota_left(owner_id)
    if size_bytes > left:
        raise QuotaExceeded(f"Media storage quota exceeded: {max(left, 0)} of {settings.MEDIA_QUOTA_BYTES} "
                            f"bytes left, {size_bytes} asked. Delete tweets with media to free some.")


def type_limit(content_type: str) -> int:
    """The largest upload of ``content_type``; a ``ValidationError`` for a type not allowed."""
    if content_type not in ALLOWED_TYPES:
        raise ValidationError({"content_type": [f"Allowed types: {', '.join(ALLOWED_TYPES)}."]})
    return ALLOWED_TYPES[content_type][0]


def new_name(*, owner_id: int, content_type: str) -> str:
    """A fresh object name for an upload of ``content_type`` (an allowed one)."""
    return f"{owner_id}/{secrets.token_urlsafe(16)}.{ALLOWED_TYPES[content_type][1]}"


def _media_record(*, owner_id: int, content_type: str, size_bytes: int, name: str | None = None,
                  description: str = "", focus: tuple[float, float] | None = None) -> Media:
    """Check the type, size and the owner's quota of an upload to be, and record it under a
    fresh name. The owner's uploads are recorded one at a time (a transaction-scoped
    advisory lock), so two at once cannot both fit in the last of the quota."""
    limit = type_limit(content_type)
    if not 1 <= size_bytes <= limit:
        raise ValidationError({"size_bytes": [f"{content_type} uploads are 1 to {limit} bytes."]})
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_QUOTA_LOCK, owner_id % 2**31])
        _quota_check(owner_id=owner_id, size_bytes=size_bytes)
        name = name or new_name(owner_id=owner_id, content_type=content_type)
        media = Media(owner_id=owner_id, key=name, content_type=content_type, size_bytes=size_bytes,
                      description=description)
        media.focus = focus
        media.save(force_insert=True)
        return media


_QUOTA_LOCK = 0x6D65  # the advisory lock space of the quota ("me")


def media_create(*, owner_id: int, content_type: str, size_bytes: int) -> tuple[Media, dict]:
    """Record an upload of at most ``size_bytes`` of ``content_type`` and presign its POST.

    Returns the record and boto3's ``{"url", "fields"}``.
    """
    media = _media_record(owner_id=owner_id, content_type=content_type, size_bytes=size_bytes)
    upload = storage.presigned_post(key=storage.key_of(media.key, Placement.UPLOAD), content_type=content_type,
                                    max_bytes=size_bytes, expires_in=settings.MEDIA_UPLOAD_EXPIRES_SECONDS)
    return media, upload


def media_upload_record(*, owner_id: int, name: str, content_type: str, size_bytes: int, description: str = "",
                        focus: tuple[float, float] | None = None) -> Media:
    """Record an upload the API already streamed to ``name``'s upload key (the Mastodon
    API's ``POST /api/v2/media``, ``media.uploads``), with its uploader's description and
    focus: outside any transaction that held the bytes. If it may not be recorded (the
    quota, filled meanwhile), the object is deleted and the refusal raised."""
    try:
        return _media_record(owner_id=owner_id, content_type=content_type, size_bytes=size_bytes, name=name,
                             description=description, focus=focus)
    except (ValidationError, ApplicationError):
        _delete_now([storage.key_of(name, Placement.UPLOAD)])
        raise


def _delete_now(keys: list[str]) -> None:
    try:
        storage.delete(keys)
    except storage.StorageUnavailable:
        logger.warning("could not delete %s now; the sweep will", keys, exc_info=True)


def upload_expires_at(media: Media) -> datetime:
    """When ``media``'s presigned upload stops working."""
    return media.created_at + timedelta(seconds=settings.MEDIA_UPLOAD_EXPIRES_SECONDS)


def upload_url(media: Media) -> str:
    """A short-lived signed URL of an upload not on a tweet yet (its uploader's preview)."""
    return storage.signed_url(storage.key_of(media.key, media.placement),
                              expires_in=settings.MEDIA_PRIVATE_URL_SECONDS)


def media_claim(*, owner_id: int, media_ids: list[int], public: bool = True) -> list[Media]:
    """Lock ``media_ids`` for a tweet about to be posted, and seal each: the owner's, not
    attached yet, copied from its upload key to its key under ``public/`` (or ``private/``
    when not ``public``: a private or suspended owner's) and checked there, really
    uploaded within its presigned type and size.

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
        _seal(media, Placement.PUBLIC if public else Placement.PRIVATE)
        claimed.append(media)
    return claimed


def _unavailable(media: Media) -> Unavailable:
    logger.warning("object storage unavailable sealing media %s", media.id, exc_info=True)
    return Unavailable("Object storage is unavailable, try again shortly.")


def _seal(media: Media, placement: str) -> None:
    """Copy ``media`` from where it was uploaded to its key under ``placement`` and check
    the copy: the one the tweet shows, which nothing but this service writes."""
    target = storage.key_of(media.key, placement)
    try:
        if not storage.copy(storage.key_of(media.key, media.placement), target):
            raise ValidationError({"media_ids": [f"Media {media.id} has not been uploaded yet."]})
        stored = storage.head(target)
    except storage.StorageUnavailable:
        raise _unavailable(media) from None
    problem = None
    if stored is None:
        problem = f"Media {media.id} has not been uploaded yet."
    elif stored.content_type != media.content_type:
        problem = f"Media {media.id} was uploaded as {stored.content_type or 'no type'}, not {media.content_type}."
    elif not 1 <= stored.size_bytes <= media.size_bytes:
        problem = f"Media {media.id} is {stored.size_bytes} bytes, more than the {media.size_bytes} presigned."
    if problem is not None:
        _delete_now([target])
        raise ValidationError({"media_ids": [problem]})
    media.placement = placement  # what media_attach records


def media_attach(*, media: list[Media], tweet_id: int) -> None:
    """Attach sealed uploads to ``tweet_id`` (which stores ``stored_form`` of each). Their
    upload keys are let go of: now, and again once their presigned POSTs expire (one
    posted again after the claim leaves nothing behind)."""
    for placement in {m.placement for m in media}:
        Media.objects.filter(id__in=[m.id for m in media if m.placement == placement]).update(
            tweet_id=tweet_id, placement=placement)
    uploads = [storage.key_of(m.key, p) for m in media for p in (Placement.UPLOAD, Placement.LEGACY)]
    _let_go(uploads)
    _let_go(uploads, due_at=max(upload_expires_at(m) for m in media) + timedelta(minutes=1))


def stored_form(media: Media) -> dict:
    """What a tweet stores of an attached medium (``tweets.objects.Media.of`` reads it):
    its id, key and type, and its description and focus when it has them."""
    stored: dict = {"media_id": str(media.id), "key": media.key, "content_type": media.content_type}
    if media.description:
        stored["description"] = media.description
    if media.focus is not None:
        stored["focus"] = list(media.focus)
    return stored


def media_describe(*, owner_id: int, media_id: int, description: str | None = None,
                   focus: tuple[float, float] | None = None) -> Media:
    """Set an upload's description and/or focus, as Mastodon lets its uploader do until a
    status takes it (the tweet keeps what it had then). ``NotFound`` for an upload that is
    not the owner's, or already on a tweet."""
    with transaction.atomic():
        media = Media.objects.select_for_update().filter(id=media_id, owner_id=owner_id, tweet_id__isnull=True).first()
        if media is None:
            raise NotFound("No such media.")
        fields = []
        if description is not None:
            if len(description) > DESCRIPTION_MAX_LENGTH:
                raise ValidationError({"description": [f"At most {DESCRIPTION_MAX_LENGTH} characters."]})
            media.description = description
            fields.append("description")
        if focus is not None:
            if not all(-1.0 <= v <= 1.0 for v in focus):
                raise ValidationError({"focus": ["Each of x and y must be between -1.0 and 1.0."]})
            media.focus = focus
            fields += ["focus_x", "focus_y"]
        if fields:
            media.save(update_fields=fields)
    return media



def _let_go(keys: Iterable[str], *, due_at: datetime | None = None, purge_after_commit: bool = True) -> None:
    """Have ``keys`` deleted from storage, in this transaction: written down now, deleted
    after commit by a task (or from ``due_at``, or by the caller), retried until done."""
    rows = [MediaGarbage(object_key=key, **({"due_at": due_at} if due_at else {})) for key in keys]
    if not rows:
        return
    MediaGarbage.objects.bulk_create(rows)
    if due_at is None and purge_after_commit:
        transaction.on_commit(_purge_soon, robust=True)


def _purge_soon() -> None:
    try:
        current_app.tasks[PURGE_TASK].delay()
    except Exception:  # noqa: BLE001 - any broker failure: the periodic purge makes up for it
        logger.warning("could not enqueue %s; the periodic purge will delete the objects", PURGE_TASK,
                       exc_info=True)


def _every_key(media: Media) -> list[str]:
    """Every key ``media``'s object may be at, wherever it was in its life."""
    return [storage.key_of(media.key, placement) for placement in Placement.values]


def media_discard(*, tweet_ids: Iterable[int]) -> int:
    """Delete the media of the tweets ``tweet_ids`` (deleted): their rows now, their
    objects from storage right after commit (``MediaGarbage``). Returns how many."""
    tweet_ids = list(tweet_ids)
    if not tweet_ids:
        return 0
    with transaction.atomic():
        gone = list(Media.objects.select_for_update().filter(tweet_id__in=tweet_ids))
        return _discard(gone)


def media_discard_owned(*, owner_id: int) -> int:
    """Delete every medium of ``owner_id`` (whose account is being deleted), as ``media_discard``."""
    with transaction.atomic():
        return _discard(list(Media.objects.select_for_update().filter(owner_id=owner_id)))


def _discard(gone: list[Media]) -> int:
    _let_go(key for m in gone for key in _every_key(m))
    Media.objects.filter(id__in=[m.id for m in gone]).delete()
    return len(gone)


def media_place(*, owner_id: int, public: bool) -> int:
    """Move ``owner_id``'s attached media under ``public/`` (``public``) or ``private/``:
    each object copied, its row pointed at the copy, the old key let go of (deleted
    right after, by this call). Idempotent; returns how many moved. Going private, the
    public object is gone within seconds of the task; a failure leaves the row where it
    was (or the old key written down as garbage), and the task's retry or the
    reconciler finishes it."""
    target = Placement.PUBLIC if public else Placement.PRIVATE
    moved = 0
    for media_id in (Media.objects.filter(owner_id=owner_id, tweet_id__isnull=False)
                     .exclude(placement=target).values_list("id", flat=True)):
        with transaction.atomic():
            media = Media.objects.select_for_update().filter(id=media_id, tweet_id__isnull=False).first()
            if media is None or media.placement == target:
                continue  # discarded or moved meanwhile
            source = storage.key_of(media.key, media.placement)
            if not storage.copy(source, storage.key_of(media.key, target)):
                # Copied by an earlier try that failed after: the object is at the target already.
                if storage.head(storage.key_of(media.key, target)) is None:
                    logger.error("media %s is at neither %s nor its target", media.id, source)
                    continue
            Media.objects.filter(id=media.id).update(placement=target)
            _let_go([source], purge_after_commit=False)
            moved += 1
    if moved:
        media_purge()
    return moved


def media_purge(*, batch_size: int = 500) -> int:
    """Delete from storage what is written down as garbage and due: the objects first,
    then their rows (a failure keeps the rows for the next try). Returns how many."""
    purged = 0
    while True:
        with transaction.atomic():
            batch = list(MediaGarbage.objects.select_for_update(skip_locked=True)
                         .filter(due_at__lte=timezone.now()).order_by("due_at")[:batch_size])
            if not batch:
                return purged
            storage.delete(sorted({g.object_key for g in batch}))
            MediaGarbage.objects.filter(id__in=[g.id for g in batch]).delete()
            purged += len(batch)


def media_sweep(*, batch_size: int = 500) -> int:
    """Delete uploads no tweet attached within ``MEDIA_UNATTACHED_MAX_AGE_SECONDS``:
    the objects first (wherever a claim that rolled back may have copied them), then
    their records. Returns how many went."""
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
            storage.delete([key for m in batch for key in _every_key(m)])
            Media.objects.filter(id__in=[m.id for m in batch]).delete()
            swept += len(batch)
            logger.info("swept %d unattached uploads", len(batch))
