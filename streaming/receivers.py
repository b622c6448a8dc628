"""How the streams hear of what happened: one line each, publishing a message (``events``).

Connected in ``StreamingConfig.ready()``. Each publishes after the change has
committed (a delivery is announced after its write), so a stream that hears of
it and then reads the timeline or the graph finds it.
"""
from django.db import transaction

from tweets.models import Tweet

from . import events


def tweet_delivered_publish(sender, *, tweet_id: int, author_id: int, lo: int, hi: int | None, **kwargs) -> None:
    events.publish(author_id, [events.TWEET, tweet_id, author_id, lo, hi])


def tweet_deleted_publish(sender, instance: Tweet, created: bool, update_fields=None, **kwargs) -> None:
    if not created and instance.deleted_at is not None and update_fields and "deleted_at" in update_fields:
        tweet_id, author_id = instance.id, instance.author_id
        transaction.on_commit(lambda: events.publish(author_id, [events.DELETE, tweet_id, author_id]))


def follow_changed_publish(sender, *, follower_id: int, followee_id: int, followed: bool, **kwargs) -> None:
    # On the followee's channel: ordered with the followee's tweets.
    transaction.on_commit(lambda: events.publish(
        followee_id, [events.FOLLOW, follower_id, followee_id, followed]))


def access_token_deleted_publish(sender, instance, **kwargs) -> None:
    # Revoked (or replaced, or its user deleted): that user's open streams check their tokens now.
    user_id = instance.user_id
    if user_id is not None:
        transaction.on_commit(lambda: events.publish(user_id, [events.ACCOUNT, user_id]), robust=True)


def authors_changed_publish(sender, *, user_ids, **kwargs) -> None:
    for user_id in user_ids:
        events.publish(user_id, [events.ACCOUNT, user_id])
