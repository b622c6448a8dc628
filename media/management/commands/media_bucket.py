"""``manage.py media_bucket``: create the media bucket if it is missing and make its ``public/`` objects readable."""
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from media import storage


class Command(BaseCommand):
    help = "Create the media bucket (AWS_STORAGE_BUCKET_NAME) if missing, with public reads of public/ alone."

    def handle(self, *args, **options):
        bucket = settings.AWS_STORAGE_BUCKET_NAME
        try:
            created = storage.bucket_ensure()
        except Exception as exc:  # noqa: BLE001 - any failure is reported in one line
            raise CommandError(f"Could not prepare bucket {bucket!r} at "
                               f"{settings.AWS_S3_ENDPOINT_URL or 'AWS S3'}: {exc}") from exc
        self.stdout.write(f"bucket {bucket!r}: {'created' if created else 'exists'}")
