from django.apps import AppConfig


class SocialConfig(AppConfig):
    name = "social"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from . import receivers
        from .models import User

        post_save.connect(receivers.user_saved_end_sessions, sender=User,
                          dispatch_uid="social.user_saved_end_sessions")
