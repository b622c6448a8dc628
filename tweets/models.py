"""Tweets: permanent rows keyed by Snowflake id, ordered by id and never by a timestamp.

Which tweets a reader may see is decided here once, as ``TweetQuerySet``'s methods
(``live``, ``by_author``, ``visible_to``); raw SQL takes the live predicate from
``live_sql``.
"""
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from social.models import seen_by_q


class TweetQuerySet(models.QuerySet):
    def live(self):
        """Tweets not deleted."""
        return self.filter(deleted_at__isnull=True)

    def by_author(self, author_id: int):
        return self.filter(author_id=author_id)

    def visible_to(self, viewer_id: int):
        """The live tweets ``viewer_id`` may see: by an active author whose tweets the viewer
        may see (``social.models.seen_by_q``)."""
        return self.live().filter(seen_by_q(viewer_id, account="author__"), author__is_active=True)


def live_sql(alias: str = "") -> str:
    """``Tweet.objects.live()``'s predicate for raw SQL over the tweet table (as ``alias``, if given)."""
    return f"{alias}.deleted_at IS NULL" if alias else "deleted_at IS NULL"


class Tweet(models.Model):
    id = models.BigIntegerField(primary_key=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    content = models.TextField(blank=True)
    created_at = models.DateTimeField()
    mentions = ArrayField(models.CharField(max_length=15), default=list, blank=True)
    hashtags = ArrayField(models.TextField(), default=list, blank=True)
    # The attached uploads, as posted: [{"media_id", "key", "content_type"}]
    # (media.services.media_attach), so showing a tweet needs no other table.
    media = models.JSONField(default=list, blank=True)
    # Soft delete: the row stays (ids are never reused); reads skip it.
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Decided once, at post time: fanned out to followers' timelines (True), or
    # pulled by readers from the author's list because the author was a
    # celebrity then (False). Crossing the threshold later changes nothing.
    pushed = models.BooleanField(default=True)

    objects = TweetQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["author", "-id"], name="tweet_author_id_desc"),
        ]

    def __str__(self) -> str:
        return f"{self.id} by {self.author_id}"

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class IdempotencyKey(models.Model):
    """A client's ``Idempotency-Key`` for a post: the same key from the same user, while
    younger than ``IDEMPOTENCY_KEY_TTL_SECONDS``, answers this tweet again."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    created_at = models.DateTimeField()
    # Null only inside the posting transaction that took the key.
    tweet_id = models.BigIntegerField(null=True)
    # What was posted under the key (``tweets.services.request_fingerprint``): the same
    # key with another request is refused, not answered with this tweet.
    fingerprint = models.CharField(max_length=64, default="", blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_per_user")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_key_created")]

    def __str__(self) -> str:
        return f"{self.key!r} of {self.user_id} -> {self.tweet_id}"


class SnowflakeLease(models.Model):
    """Who holds a Snowflake worker id (``tweets.snowflake``) until when, by PostgreSQL's clock,
    and the last millisecond its holders recorded (the next holder starts past it).

    One row per worker id, 0 to 1023 (the migration inserts them all); a row whose
    ``expires_at`` has passed is free. Written only by ``tweets.snowflake``, on a
    connection of its own in autocommit, never inside a request's transaction.
    """

    worker_id = models.SmallIntegerField(primary_key=True)
    holder = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField()
    high_water_ms = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"worker {self.worker_id}: {self.holder or 'free'} until {self.expires_at}"
