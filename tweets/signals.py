"""One-line signal handlers: each hands over to a service."""
from django.db.models.signals import post_save
from django.dispatch import receiver

from timelines.services import fanout_schedule

from .models import Tweet


@receiver(post_save, sender=Tweet, dispatch_uid="tweet_fanout_on_create")
def tweet_created(sender, instance: Tweet, created: bool, **kwargs) -> None:
    if created:
        fanout_schedule(tweet_id=instance.id)
