"""Uploads: one row per upload, owned by its uploader, attached to at most one tweet; and
the objects storage still has to delete (``MediaGarbage``)."""
from django.conf import settings
from django.db import models
from django.db.models.functions import Now

# The longest description (alt text) of a medium: Mastodon's limit.
DESCRIPTION_MAX_LENGTH = 1500


class Media(models.Model):
    class Placement(models.TextChoices):
        """Where the object is now: its key is the prefix (``media.storage.PREFIXES``) and ``key``."""

        UPLOAD = "upload", "uploaded, not on a tweet yet (uploads/)"
        PUBLIC = "public", "on a tweet, publicly readable (public/)"
        PRIVATE = "private", "on a tweet of a private or suspended owner (private/)"
        LEGACY = "legacy", "stored before the prefixes (at the bare key), moved by the reconciler"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # The object's name, ``{owner}/{random}.{ext}``; its key in the bucket is the
    # placement's prefix and this. The presigned policy pins the upload's key.
    key = models.CharField(max_length=200, unique=True)
    content_type = models.CharField(max_length=50)
    # The largest size the presigned policy allows (what the client declared), or
    # the size stored, for an upload through the API.
    size_bytes = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Set once, when a tweet attaches it. A plain id, not a foreign key: media
    # sits below tweets in the layers and knows nothing of the Tweet model.
    tweet_id = models.BigIntegerField(null=True, blank=True)
    placement = models.CharField(max_length=8, choices=Placement.choices, default=Placement.UPLOAD)
    # What the uploader says it shows (alt text), and the point a cropped preview keeps
    # in view, each of x and y in [-1, 1] (Mastodon's focus); set before a tweet takes it.
    description = models.TextField(max_length=DESCRIPTION_MAX_LENGTH, blank=True, default="")
    focus_x = models.FloatField(null=True, blank=True)
    focus_y = models.FloatField(null=True, blank=True)

    @property
    def focus(self) -> tuple[float, float] | None:
        """The focal point as ``(x, y)``, or None when none was set."""
        return (self.focus_x, self.focus_y) if self.focus_x is not None and self.focus_y is not None else None

    @focus.setter
    def focus(self, point: tuple[float, float] | None) -> None:
        self.focus_x, self.focus_y = point if point is not None else (None, None)

    class Meta:
        verbose_name_plural = "media"
        indexes = [
            # The sweeper's scan: old uploads no tweet took.
            models.Index(fields=["created_at"], condition=models.Q(tweet_id__isnull=True), name="media_unattached"),
            # A deleted tweet's media (tweet_delete, the reconciler).
            models.Index(fields=["tweet_id"], condition=models.Q(tweet_id__isnull=False), name="media_tweet"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.content_type}) by {self.owner_id}"


class MediaGarbage(models.Model):
    """An object storage must delete, from ``due_at`` on: written in the transaction that
    lets go of it (a tweet deleted, an owner deleted, an object moved), so a deletion
    that fails after commit is retried (``services.media_purge``) until it is done."""

    object_key = models.CharField(max_length=220)
    due_at = models.DateTimeField(db_default=Now())

    class Meta:
        verbose_name_plural = "media garbage"
        indexes = [models.Index(fields=["due_at"], name="media_garbage_due")]

    def __str__(self) -> str:
        return f"{self.object_key} (from {self.due_at})"
