"""``manage.py media_reconcile``: run the media reconciler until nothing is left to do.

The beat job (``tweets.media_reconcile``) does a batch every ``MEDIA_RECONCILE_EVERY_SECONDS``;
after an upgrade from the unprefixed layout, or a long storage outage, run this once
to place every object (and delete every pending one) now, with progress.
"""
from django.core.management.base import BaseCommand

from tweets import services


class Command(BaseCommand):
    help = "Place every media object where its tweet and owner say, and finish pending deletions, now."

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=1000, help="media a round (default 1000)")

    def handle(self, *args, batch: int, **options):
        total = 0
        while changed := services.media_reconcile(limit=batch):
            total += changed
            self.stdout.write(f"  {total} media placed or deleted so far ...")
        self.stdout.write(f"done: {total} media placed or deleted")
