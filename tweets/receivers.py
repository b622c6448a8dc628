"""What the tweets app does when the social graph announces a change (connected in ``TweetsConfig.ready()``).

A cached tweet carries its author's summary (``objects.TweetEntry``), so when
an author's summary changes or the author is deleted, the cached entries of
their tweets are dropped and the next read fills them afresh. Their media follow
the author's state: moved out of public reach when the account is suspended or
made private, back when reinstated or made public (``services.media_place_for``,
in a task), and deleted with the account.
"""
import logging

from celery import current_app
from django.db import transaction

from media import services as media_services

from . import cache, services
from .models import Tweet

logger = logging.getLogger(__name__)


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


def authors_changed_place_media(sender, user_ids: set[int], **kwargs) -> None:
    """After an account change commits (and again when it is replayed, within seconds):
    have the accounts' media put where their state says, by a task (it copies objects).
    A broker that does not take it is logged: the reconciler (``media_reconcile``,
    every ``MEDIA_RECONCILE_EVERY_SECONDS``) places them then."""
    try:
        current_app.tasks[services.MEDIA_PLACE_TASK].delay(sorted(user_ids))
    except Exception:  # noqa: BLE001 - any broker failure; the other receivers still run
        logger.warning("could not enqueue %s for %s; the reconciler will place them", services.MEDIA_PLACE_TASK,
                       sorted(user_ids), exc_info=True)


def user_deleted_discard_media(sender, instance, **kwargs) -> None:
    """Before a user's row (and with it their media rows) is deleted: every object of
    theirs is written down for deletion, in the same transaction, and deleted after commit."""
    media_services.media_discard_owned(owner_id=instance.pk)
