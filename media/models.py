"""Uploads: one row per presigned upload, owned by its uploader, attached to at most one tweet."""
from django.conf import settings
from django.db import models


class Media(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    # The object's key in the bucket; the presigned policy pins it.
    key = models.CharField(max_length=200, unique=True)
    content_type = models.CharField(max_length=50)
    # The largest size the presigned policy allows (what the client declared).
    size_bytes = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Set once, when a tweet attaches it. A plain id, not a foreign key: media
    # sits below tweets in the layers and knows nothing of the Tweet model.
    tweet_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "media"
        indexes = [
            # The sweeper's scan: old uploads no tweet took.
            models.Index(fields=["created_at"], condition=models.Q(tweet_id__isnull=True), name="media_unattached"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.content_type}) by {self.owner_id}"
