"""Celery tasks of the timeline: they take ids, call a service, and own their retry policy."""
from celery import shared_task

from . import services, store


@shared_task(
    name="timelines.fanout",
    acks_late=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=10,
)
def fanout_task(tweet_id: int, after_follower_id: int = 0) -> int:
    return services.fanout_tweet(tweet_id=tweet_id, after_follower_id=after_follower_id)


@shared_task(name="timelines.follow_graph_changed", acks_late=True, autoretry_for=(Exception,),
             retry_backoff=True, retry_backoff_max=60, max_retries=20)
def follow_graph_changed_task(user_id: int, followed: bool) -> None:
    store.follow_graph_changed(user_id=user_id, drop_timeline=followed)
