"""Every write to tweets: posting (once per idempotency key) and deleting; and keeping
their media where the tweet and its author say (``media_place_for``, ``media_reconcile``)."""
import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.signals import post_save
from django.utils import timezone

from core.exceptions import ApplicationError, Forbidden, NotFound
from media import services as media_services
from media.models import Media
from social.models import User
from social.readers import ReaderUser

from . import cache, snowflake, text
from .models import IdempotencyKey, Tweet
from .objects import TweetEntry

logger = logging.getLogger(__name__)


_AUTHOR_FIELDS = ("username", "display_name", "is_active", "is_private")

# A post in one statement. The UPDATE records the new id as the author's last and takes the
# author's row lock: each author's ids then increase in the order their tweets commit, and the
# push-or-pull decision agrees with the follower count a concurrent follow commits. The tweet is
# inserted only if the author's row was updated, and the tweet's insert writes its pending
# fan-out (the timelines app's trigger). No row back: the author is gone or suspended, or
# already has an id at least as high (minted by a process whose clock runs ahead).
_POST_SQL = f"""
WITH author AS (
    UPDATE {User._meta.db_table}
    SET last_tweet_id = %(id)s, has_pulled_tweets = has_pulled_tweets OR followers_count >= %(threshold)s
    WHERE id = %(author_id)s AND is_active AND (last_tweet_id IS NULL OR last_tweet_id < %(id)s)
    RETURNING followers_count, {", ".join(_AUTHOR_FIELDS)}
), tweet AS (
    INSERT INTO {Tweet._meta.db_table} (id, author_id, content, created_at, mentions, hashtags, media, pushed)
    SELECT %(id)s, %(author_id)s, %(content)s, %(created_at)s, %(mentions)s, %(hashtags)s, %(media)s,
           followers_count < %(threshold)s
    FROM author
)
SELECT followers_count, {", ".join(_AUTHOR_FIELDS)} FROM author
"""


def _insert(*, author_id: int, content: str, media: list[dict]) -> Tweet:
    """Mint the tweet's id above the author's last, and write the tweet (``_POST_SQL``): one
    statement, so in autocommit one round trip. When the author's last id is ahead of this
    process's clock, the author's row is locked and read first, and the id minted above it.
    Sends the tweet's post_save once it is written."""
    threshold = settings.TIMELINE_CELEBRITY_THRESHOLD
    values = {"author_id": author_id, "threshold": threshold, "content": content,
              "mentions": text.extract_mentions(content), "hashtags": text.extract_hashtags(content),
              "media": Tweet._meta.get_field("media").get_db_prep_save(media, connection)}

    def write(tweet_id: int) -> tuple | None:
        with connection.cursor() as cursor:
            cursor.execute(_POST_SQL, values | {"id": tweet_id, "created_at": snowflake.datetime_of(tweet_id)})
            return cursor.fetchone()

    tweet_id = snowflake.next_id()
    row = write(tweet_id)
    if row is None:
        with transaction.atomic():
            found = (User.objects.select_for_update(no_key=True).filter(id=author_id)
                     .values_list("last_tweet_id", "is_active").first())
            if found is None:
                raise NotFound("No such user.")
            if not found[1]:
                raise Forbidden("This account is suspended.")
            tweet_id = snowflake.next_id(after=found[0] or 0)
            row = write(tweet_id)
            if row is None:  # the row is locked, active, and its last id is below this one
                raise RuntimeError(f"user {author_id}'s row vanished under its lock")
    followers, *fields = row
    # The author's row as read, its other fields deferred (read on access, never made up),
    # and the tweet as written; from_db takes the values in the model's field order.
    author = _from_db(User, {"id": author_id, **dict(zip(_AUTHOR_FIELDS, fields, strict=True))})
    tweet = _from_db(Tweet, {"id": tweet_id, "author_id": author_id, "content": content,
                             "created_at": snowflake.datetime_of(tweet_id), "mentions": values["mentions"],
                             "hashtags": values["hashtags"], "media": media, "deleted_at": None,
                             "pushed": followers < threshold})
    tweet.author = author
    # As Model.save() sends it: the timelines app starts the fan-out from it, after commit.
    post_save.send(sender=Tweet, instance=tweet, created=True, update_fields=None, raw=False,
                   using=connection.alias)
    return tweet


def _from_db(model, read: dict):
    names = [f.attname for f in model._meta.concrete_fields if f.attname in read]
    return model.from_db(connection.alias, names, [read[name] for name in names])


def tweet_post(
    *, author: User | ReaderUser, content: str, media_ids: Sequence[int] = (), idempotency_key: str | None = None,
) -> tuple[Tweet, bool]:
    """Post a tweet at most once per ``idempotency_key``: (the tweet, whether it is new).

    The same key from the same author within ``IDEMPOTENCY_KEY_TTL_SECONDS``
    answers the tweet it first created and creates nothing, also when both
    requests race: the key's unique index makes the second insert wait for the
    first transaction, and then see its key. A request that fails leaves no
    key behind, so a retry posts.
    """
    if idempotency_key is None:
        return tweet_create(author=author, content=content, media_ids=media_ids), True
    with transaction.atomic():
        return _tweet_post_once(author=author, content=content, media_ids=media_ids, idempotency_key=idempotency_key)


def _tweet_post_once(*, author: User | ReaderUser, content: str, media_ids: Sequence[int],
                     idempotency_key: str) -> tuple[Tweet, bool]:
    fingerprint = request_fingerprint(content=content, media_ids=media_ids)
    key_id = _idempotency_key_take(user_id=author.id, key=idempotency_key, fingerprint=fingerprint)
    if key_id is None:
        tweet_id, taken_for = IdempotencyKey.objects.values_list("tweet_id", "fingerprint").get(
            user_id=author.id, key=idempotency_key)
        if taken_for and taken_for != fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used for a different tweet; use a new key for a new one.")
        if tweet_id is None:  # set in the transaction that took the key
            raise RuntimeError(f"the Idempotency-Key {idempotency_key!r} points at no tweet")
        return Tweet.objects.get(id=tweet_id), False
    tweet = tweet_create(author=author, content=content, media_ids=media_ids)
    IdempotencyKey.objects.filter(id=key_id).update(tweet_id=tweet.id)
    return tweet, True


class IdempotencyKeyReused(ApplicationError):
    """The same ``Idempotency-Key`` came with another request (Stripe's answer: 422)."""

    status_code = 422


def request_fingerprint(*, content: str, media_ids: Sequence[int]) -> str:
    """What identifies a post request, whichever API sent it: its text and its media, in order."""
    canonical = json.dumps([content, [int(m) for m in media_ids]], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _idempotency_key_take(*, user_id: int, key: str, fingerprint: str) -> int | None:
    """Take ``key`` for a new post of the request ``fingerprint`` (inserting it, or renewing
    an expired one): its row id, or None while the key still answers an earlier tweet."""
    now = timezone.now()
    table = IdempotencyKey._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (user_id, key, created_at, tweet_id, fingerprint) VALUES (%s, %s, %s, NULL, %s) "
            f"ON CONFLICT (user_id, key) DO UPDATE SET created_at = EXCLUDED.created_at, tweet_id = NULL, "
            f"fingerprint = EXCLUDED.fingerprint WHERE {table}.created_at < %s RETURNING id",
            [user_id, key, now, fingerprint, now - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def idempotency_keys_sweep() -> int:
    """Forget keys past their time (an expired key is renewed on use anyway; this keeps the table small)."""
    cutoff = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_KEY_TTL_SECONDS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def tweet_create(*, author: User | ReaderUser, content: str, media_ids: Sequence[int] = ()) -> Tweet:
    """Post a tweet: validate, claim its media, mint its id above the author's last, insert, warm the cache.

    Each upload in ``media_ids`` must be the author's, unattached and really in
    object storage within its presigned type and size (``media.services.media_claim``);
    with media, the text may be blank. Without media (and outside a transaction)
    the tweet is written by one statement in autocommit; with media, in one
    transaction with the claim and the attachment.

    The tweet's insert records its fan-out as pending (the timelines app's
    trigger, in the same statement), and its post_save reaches
    ``timelines.receivers.tweet_created_schedule_fanout``, which sends it to a
    worker after commit (``timelines.services.fanout_schedule``): pushed to
    followers' cached timelines, or, for a celebrity's tweet, to the author's
    pulled list. This app knows nothing of timelines.
    """
    if not content.strip() and not media_ids:
        raise ValidationError({"content": ["A tweet needs some text or media."]})
    if not text.is_parseable(content):
        raise ValidationError({"content": ["This text is too long or has too many dot-separated parts in a row."]})
    if content and not text.is_valid_length(content):  # twitter-text calls "" invalid; with media it is fine
        raise ValidationError(
            {"content": [f"Tweets are at most {text.MAX_WEIGHTED_LENGTH} characters "
                         f"(this one counts {text.weighted_length(content)})."]}
        )
    if not media_ids:
        tweet = _insert(author_id=author.id, content=content, media=[])
    else:
        with transaction.atomic():
            # Before minting: the copies and HEADs of the uploads must not hold the author's row lock.
            claimed = media_services.media_claim(owner_id=author.id, media_ids=list(media_ids),
                                                 public=_media_public(author.id))
            tweet = _insert(author_id=author.id, content=content,
                            media=[media_services.stored_form(m) for m in claimed])
            media_services.media_attach(media=claimed, tweet_id=tweet.id)
    # Warm the cache for the followers about to read it, once it is really there.
    transaction.on_commit(lambda: _warm_cache(tweet))
    return tweet


def _warm_cache(tweet: Tweet) -> None:
    try:
        cache.fill_many({tweet.id: TweetEntry.of(tweet)})
    except Exception:  # noqa: BLE001 - only a warm-up: the tweet is committed, the 201 stands
        logger.warning("could not warm the cache for tweet %s", tweet.id, exc_info=True)


@transaction.atomic
def tweet_delete(*, tweet_id: int, actor: User) -> None:
    """Soft-delete a tweet (its author, or a moderator: ``tweets.delete_tweet``); timelines
    drop it on their next read, and its media are deleted from storage once this commits.
    A tweet the actor may not see is not found, as its GET answers: a refusal would tell
    that it exists."""
    tweet = Tweet.objects.select_for_update().live().filter(id=tweet_id).first()
    if tweet is None:
        raise NotFound("No such tweet.")
    if tweet.author_id != actor.id and not actor.has_perm("tweets.delete_tweet"):
        if not Tweet.objects.visible_to(actor.id).filter(id=tweet_id).exists():
            raise NotFound("No such tweet.")
        raise Forbidden("Only the author or a moderator may delete this tweet.")
    tweet.deleted_at = timezone.now()
    tweet.save(update_fields=["deleted_at"])
    # Its media go with it: the rows now, the objects from storage right after commit.
    if tweet.media:
        media_services.media_discard(tweet_ids=[tweet.id])
    # Also before commit, so no reader refills the cache from the old row in
    # between; briefly, in case this transaction rolls back after all.
    cache.tombstone(tweet.id, ttl=30)
    transaction.on_commit(lambda: cache.tombstone(tweet.id))


# --- Media where their tweets and owners say -------------------------------------------


# The task that places an account's media after a change (``tasks.media_place_task``).
MEDIA_PLACE_TASK = "tweets.media_place"


def _media_public(user_id: int) -> bool:
    """Whether ``user_id``'s media go under ``public/``: an active, public account's."""
    return User.objects.filter(id=user_id, is_active=True, is_private=False).exists()


def media_place_for(*, user_ids: Sequence[int]) -> int:
    """Put the media of ``user_ids`` where their accounts' state says (``public/`` for an
    active public account, else ``private/``, out of public reach); returns how many
    moved. Sent after an account change commits (``receivers``) and by the reconciler."""
    public = set(User.objects.filter(id__in=user_ids, is_active=True, is_private=False)
                 .values_list("id", flat=True))
    return sum(media_services.media_place(owner_id=user_id, public=user_id in public) for user_id in user_ids)


def media_reconcile(*, limit: int = 1000) -> int:
    """What the after-commit work missed: the media of tweets deleted some other way (the
    admin, SQL) deleted, media of owners whose state changed placed anew, and storage
    deletions still pending retried. Returns how many media it changed."""
    Placement = media_services.Placement
    live = Tweet.objects.live().filter(id=OuterRef("tweet_id"))
    deleted = [tweet_id for tweet_id in Media.objects.filter(tweet_id__isnull=False).filter(~Exists(live))
               .values_list("tweet_id", flat=True).distinct()[:limit]
               if tweet_id is not None]  # never None (filtered above): for the type checker
    changed = media_services.media_discard(tweet_ids=deleted)
    hidden = Q(owner__is_active=False) | Q(owner__is_private=True)
    misplaced = list(
        Media.objects.filter(tweet_id__isnull=False)
        .filter((hidden & ~Q(placement=Placement.PRIVATE)) | (~hidden & ~Q(placement=Placement.PUBLIC)))
        .values_list("owner_id", flat=True).distinct()[:limit])
    changed += media_place_for(user_ids=misplaced)
    media_services.media_purge()
    return changed
