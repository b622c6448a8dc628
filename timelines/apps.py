from django.apps import AppConfig
from django.db.models.signals import post_save


class TimelinesConfig(AppConfig):
    name = "timelines"

    def ready(self) -> None:
        from social.signals import follow_changed
        from tweets.models import Tweet

        from . import receivers, tasks  # noqa: F401 - tasks: registered in every process, sent by name

        post_save.connect(receivers.tweet_created_schedule_fanout, sender=Tweet, dispatch_uid="timeline_fanout")
        follow_changed.connect(receivers.follow_changed_update_timeline, dispatch_uid="timeline_follow_update")
