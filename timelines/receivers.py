"""How the timeline reacts to what the lower apps announce: one line each, calling a service.

Connected in ``TimelinesConfig.ready()``. ``tweets`` and ``social`` never import
this app; they send signals (a new tweet's post_save, ``social.signals.follow_changed``)
and these receivers, running inside the sender's transaction, take it from there.
"""
from tweets.models import Tweet

from . import services


def tweet_created_schedule_fanout(sender, instance: Tweet, created: bool, **kwargs) -> None:
    if created:
        services.fanout_schedule(tweet_id=instance.id)


def follow_changed_update_timeline(sender, *, follower_id: int, followee_id: int, followed: bool, **kwargs) -> None:
    services.timeline_follow_schedule(user_id=follower_id, followee_id=followee_id, followed=followed)
