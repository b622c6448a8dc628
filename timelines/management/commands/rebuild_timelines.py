"""Rebuild cached home timelines from PostgreSQL: one user's, several, or every cached one."""
import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from social.models import User
from timelines import store
from timelines.rebuilds import timeline_rebuild


class Command(BaseCommand):
    help = (
        "Rebuild home timelines from PostgreSQL, replacing what Redis holds (deliveries made "
        "meanwhile are kept). --all rebuilds every timeline that is cached; inactive users' are "
        "left absent, to be rebuilt on their next read."
    )

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--user", type=int, action="append", dest="user_ids", metavar="USER_ID",
                            help="rebuild this user's timeline (repeatable); cached or not")
        target.add_argument("--all", action="store_true", help="rebuild every cached timeline")
        parser.add_argument("--batch", type=int, default=500, help="users checked per Redis round trip")

    def handle(self, *args, user_ids=None, all=False, batch=500, **options):
        if user_ids:
            known = set(User.objects.filter(id__in=user_ids).values_list("id", flat=True))
            if unknown := sorted(set(user_ids) - known):
                raise CommandError(f"No such user: {', '.join(map(str, unknown))}.")
            batches, total = [(user_ids, len(user_ids))], len(user_ids)
        else:
            batches, total = self._cached_in_batches(batch), User.objects.count()
        rebuilt = 0
        with tqdm(total=total, unit="user", desc="rebuilding", file=sys.stderr, disable=None) as progress:
            for user_batch, checked in batches:
                for user_id in user_batch:
                    self._rebuild(user_id)
                    rebuilt += 1
                progress.update(checked)
        self.stdout.write(f"Rebuilt {rebuilt} timeline{'s' if rebuilt != 1 else ''}.")

    @staticmethod
    def _cached_in_batches(batch: int):
        """(users with a cached timeline, users checked) for every batch of user ids."""
        last = 0
        while True:
            ids = list(User.objects.filter(id__gt=last).order_by("id").values_list("id", flat=True)[:batch])
            if not ids:
                return
            yield store.existing(user_ids=ids), len(ids)
            last = ids[-1]

    @staticmethod
    def _rebuild(user_id: int) -> None:
        timeline_rebuild(user_id=user_id, generation=store.generation(user_id=user_id), replace=True)
