"""Every write to tweets: posting and deleting."""
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.exceptions import Forbidden, NotFound
from social.models import User

from . import cache, objects, snowflake, text
from .models import Tweet

logger = logging.getLogger(__name__)


def _mint_for_author(*, author_id: int) -> tuple[int, bool]:
    """Mint an id greater than any the author already has, record it, and decide
    whether the tweet is pushed to followers or pulled by them.

    Ids of one process increase, but another process (with a clock slightly
    ahead, say) may have minted the author's previous id. Locking the author's
    row and minting above their last id makes each author's ids strictly
    increase in the order the tweets are committed. The same lock makes the
    push-or-pull decision, taken here once for good, agree with the follower
    count a concurrent follow commits.
    """
    last, followers, has_pulled = (
        User.objects.select_for_update(no_key=True)
        .values_list("last_tweet_id", "followers_count", "has_pulled_tweets").get(id=author_id)
    )
    tweet_id = snowflake.next_id(after=last)
    pushed = followers < settings.TIMELINE_CELEBRITY_THRESHOLD
    changes = {"last_tweet_id": tweet_id}
    if not pushed and not has_pulled:
        changes["has_pulled_tweets"] = True
    User.objects.filter(id=author_id).update(**changes)
    return tweet_id, pushed


@transaction.atomic
def tweet_create(*, author: User, content: str) -> Tweet:
    """Post a tweet: validate, mint its id above the author's last, insert, warm the cache.

    The insert's post_save reaches ``timelines.receivers.tweet_created_schedule_fanout``,
    which records the fan-out as pending in this same transaction and sends it
    to a worker after commit (``timelines.services.fanout_schedule``): pushed to
    followers' cached timelines, or, for a celebrity's tweet, to the author's
    pulled list. This app knows nothing of timelines.
    """
    if not content.strip():
        raise ValidationError({"content": ["A tweet needs some text."]})
    if not text.is_parseable(content):
        raise ValidationError({"content": ["This text is too long or has too many dot-separated parts in a row."]})
    if not text.is_valid_length(content):
        raise ValidationError(
            {"content": [f"Tweets are at most 280 characters (this one counts {text.weighted_length(content)})."]}
        )
    tweet_id, pushed = _mint_for_author(author_id=author.id)
    tweet = Tweet.objects.create(
        id=tweet_id,
        author=author,
        content=content,
        created_at=snowflake.datetime_of(tweet_id),
        mentions=text.extract_mentions(content),
        hashtags=text.extract_hashtags(content),
        pushed=pushed,
    )
    # Warm the cache for the followers about to read it, once it is really there.
    transaction.on_commit(lambda: _warm_cache(tweet))
    return tweet


def _warm_cache(tweet: Tweet) -> None:
    try:
        cache.fill_many({tweet.id: objects.cached_entry(tweet)})
    except Exception:  # noqa: BLE001 - only a warm-up: the tweet is committed, the 201 stands
        logger.warning("could not warm the cache for tweet %s", tweet.id, exc_info=True)


@transaction.atomic
def tweet_delete(*, tweet_id: int, actor: User) -> None:
    """Soft-delete a tweet (author or staff); timelines drop it on their next read."""
    tweet = Tweet.objects.select_for_update().filter(id=tweet_id, deleted_at__isnull=True).first()
    if tweet is None:
        raise NotFound("No such tweet.")
    if tweet.author_id != actor.id and not actor.is_staff:
        raise Forbidden("Only the author or a moderator may delete this tweet.")
    tweet.deleted_at = timezone.now()
    tweet.save(update_fields=["deleted_at"])
    # Also before commit, so no reader refills the cache from the old row in
    # between; briefly, in case this transaction rolls back after all.
    cache.tombstone(tweet.id, ttl=30)
    transaction.on_commit(lambda: cache.tombstone(tweet.id))
