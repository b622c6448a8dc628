from django.apps import AppConfig


class MediaConfig(AppConfig):
    """Presigned uploads to S3-compatible storage (built in the media issue)."""

    name = "media"
