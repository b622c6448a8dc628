from django.apps import AppConfig


class MediaConfig(AppConfig):
    """Presigned uploads to S3-compatible storage, claimed by tweets, swept when never claimed."""

    name = "media"
    verbose_name = "Media"
