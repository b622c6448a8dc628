from django.apps import AppConfig


class MastoapiConfig(AppConfig):
    """A Mastodon-compatible client API beside /v1: thin views over the same services."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "mastoapi"
    verbose_name = "Mastodon-compatible API"
