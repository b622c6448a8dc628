from django.apps import AppConfig


class TweetsConfig(AppConfig):
    name = "tweets"

    def ready(self) -> None:
        from django.db.models.signals import pre_delete

        from social.models import User
        from social.signals import authors_changed

        from . import receivers, tasks  # noqa: F401 - tasks: registered in every process, sent by name

        authors_changed.connect(receivers.authors_changed_evict_tweets, dispatch_uid="tweets.authors_changed")
        pre_delete.connect(receivers.user_deleted_evict_tweets, sender=User, dispatch_uid="tweets.user_deleted")
        authors_changed.connect(receivers.authors_changed_place_media, dispatch_uid="tweets.authors_changed_media")
        pre_delete.connect(receivers.user_deleted_discard_media, sender=User,
                           dispatch_uid="tweets.user_deleted_media")
