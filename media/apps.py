from django.apps import AppConfig


class MediaConfig(AppConfig):
    """Presigned uploads to S3-compatible storage, claimed by tweets, deleted with them, swept when never claimed."""

    name = "media"
    verbose_name = "Media"

    def ready(self) -> None:
        from . import tasks  # noqa: F401 - registered in every process, sent by name (services.PURGE_TASK)
