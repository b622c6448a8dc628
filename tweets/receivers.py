"""What the tweets app does when the social graph announces a change (connected in ``TweetsConfig.ready()``).

A cached tweet carries its author's summary (``objects.TweetEntry``), so when
an author's summary changes or the author is deleted, the cached entries of
their tweets are dropped and the next read fills them afresh.
"""
from django.db import transaction

from . import cache
from .models import Tweet


def authors_changed_evict_tweets(sender, user_ids: set[int], **kwargs) -> None:
    """After ``social.cache`` rewrote or dropped these authors' summaries (after commit,
    and again when the account-change log is replayed: a read that filled an entry
    from a row older than the change is evicted by the second pass)."""
    cache.evict_authored_by(user_ids)


def user_deleted_evict_tweets(sender, instance, **kwargs) -> None:
    """Before a user's row (and with it their tweets) is deleted: their ids are read
    now, while they exist, and their entries dropped once the deletion commits."""
    tweet_ids = list(Tweet.objects.filter(author_id=instance.pk).values_list("id", flat=True))
    transaction.on_commit(lambda: cache.evict(tweet_ids))
