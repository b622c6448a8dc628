from django.apps import AppConfig


class StreamingConfig(AppConfig):
    name = "streaming"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save
        from oauth2_provider.models import get_access_token_model

        from social.signals import authors_changed, follow_changed
        from timelines.signals import tweet_delivered
        from tweets.models import Tweet

        from . import receivers

        tweet_delivered.connect(receivers.tweet_delivered_publish, dispatch_uid="streaming.tweet")
        post_save.connect(receivers.tweet_deleted_publish, sender=Tweet, dispatch_uid="streaming.delete")
        follow_changed.connect(receivers.follow_changed_publish, dispatch_uid="streaming.follow")
        authors_changed.connect(receivers.authors_changed_publish, dispatch_uid="streaming.accounts")
        post_delete.connect(receivers.access_token_deleted_publish, sender=get_access_token_model(),
                            dispatch_uid="streaming.token")
