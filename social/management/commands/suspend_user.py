"""Suspend a user from the command line (``--reinstate`` to undo), as the admin's moderators do."""
from django.core.management.base import BaseCommand, CommandError

from social import services
from social.models import User


class Command(BaseCommand):
    help = (
        "Suspend a user: they can no longer log in, refresh or use a token, and their tweets "
        "disappear from timelines. --reinstate undoes it; their tweets come back."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", help="the user's name (any case)")
        parser.add_argument("--reinstate", action="store_true", help="reinstate a suspended user instead")

    def handle(self, *args, username: str, reinstate: bool = False, **options):
        user_id = User.objects.named(username).values_list("id", flat=True).first()
        if user_id is None:
            raise CommandError(f"No such user: {username}.")
        service, done = (services.user_reinstate, "reinstated") if reinstate else (services.user_suspend, "suspended")
        if service(user_id=user_id):
            self.stdout.write(f"{username} is {done}.")
        else:
            self.stdout.write(f"{username} was already {done}; nothing changed.")
