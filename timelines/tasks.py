"""Celery tasks of the timeline: they take ids, call a service, and own their retry policy.

Every task is idempotent and runs with late acknowledgement (settings), so a
message is redelivered, not lost, if its worker dies; a duplicate is harmless.
Services send them by name (``services.*_TASK``).
"""
from typing import Any

from celery import shared_task

from . import services

_RETRY: dict[str, Any] = {"acks_late": True, "autoretry_for": (Exception,), "retry_backoff": True,
                          "retry_backoff_max": 60}


@shared_task(name=services.FANOUT_TASK, max_retries=10, **_RETRY)
def fanout_task(tweet_id: int) -> int:
    return services.fanout_tweet(tweet_id=tweet_id)


@shared_task(name=services.FANOUT_MANY_TASK, max_retries=10, **_RETRY)
def fanout_many_task(tweet_ids: list[int]) -> int:
    return services.fanout_tweets(tweet_ids=tweet_ids)


@shared_task(name=services.FANOUT_BATCH_TASK, max_retries=10, **_RETRY)
def fanout_batch_task(tweet_id: int, author_id: int, lo: int, hi: int, follower_ids: list[int] | None = None) -> int:
    return services.fanout_batch(tweet_id=tweet_id, author_id=author_id, lo=lo, hi=hi, follower_ids=follower_ids)


@shared_task(name=services.RECONCILE_TASK, max_retries=0, acks_late=True)
def fanout_reconcile_task() -> int:
    return services.fanout_reconcile()


@shared_task(name=services.FOLLOW_UPDATE_TASK, max_retries=20, **_RETRY)
def follow_update_task(user_id: int, followee_id: int, followed: bool, pending_id: int | None = None) -> None:
    services.timeline_follow_update(user_id=user_id, followee_id=followee_id, followed=followed,
                                    pending_id=pending_id, retry_later=False)


@shared_task(name=services.REPLAY_FOLLOW_UPDATES_TASK, max_retries=0, acks_late=True)
def follow_updates_replay_task() -> int:
    # Beat sends it every few seconds: a failed run is the next one's work.
    return services.follow_updates_replay()


@shared_task(name=services.FAILOVER_REPAIR_TASK, max_retries=0, acks_late=True)
def failover_repair_task() -> int:
    # Beat sends it every few seconds: a failed run is the next one's work.
    return len(services.failover_repair() or ())
