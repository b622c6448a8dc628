from django.apps import AppConfig


class MastoapiConfig(AppConfig):
    """A Mastodon-compatible client API beside /v1: thin views over the same services."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "mastoapi"
    verbose_name = "Mastodon-compatible API"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, pre_save
        from oauth2_provider.models import get_access_token_model

        from social.signals import sessions_ended

        from . import receivers

        post_delete.connect(receivers.access_token_deleted_forget, sender=get_access_token_model(),
                            dispatch_uid="mastoapi.access_token_deleted_forget")
        pre_save.connect(receivers.access_token_changing_forget, sender=get_access_token_model(),
                         dispatch_uid="mastoapi.access_token_changing_forget")
        sessions_ended.connect(receivers.sessions_ended_revoke_oauth_tokens,
                               dispatch_uid="mastoapi.sessions_ended_revoke_oauth_tokens")
