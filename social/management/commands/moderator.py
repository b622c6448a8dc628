"""Make a user a moderator (``--remove`` to undo): staff, in the "moderator" group of migration 0007."""
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from social.models import User

GROUP = "moderator"  # made by social's migration 0007


class Command(BaseCommand):
    help = (
        'Make a user a moderator: staff (they may log in to /admin/) and in the "moderator" group, which may '
        "suspend and reinstate users, look at users, follows and tweets, and delete tweets; nothing more. "
        "--remove takes them out of the group, and their staff status too unless they are a superuser "
        "or have other groups or permissions."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", help="the user's name (any case)")
        parser.add_argument("--remove", action="store_true", help="stop the user being a moderator")

    @transaction.atomic
    def handle(self, *args, username: str, remove: bool = False, **options):
        group = Group.objects.filter(name=GROUP).first()
        if group is None:
            raise CommandError(f'There is no "{GROUP}" group: run manage.py migrate.')
        user = User.objects.named(username).select_for_update(no_key=True).first()
        if user is None:
            raise CommandError(f"No such user: {username}.")
        if remove:
            user.groups.remove(group)
            keeps_staff = (user.is_superuser or user.groups.exists() or user.user_permissions.exists())
            if user.is_staff and not keeps_staff:
                user.is_staff = False
                user.save(update_fields=["is_staff"])
            staff = " (still staff)" if user.is_staff else ""
            self.stdout.write(f"{user.username} is no longer a moderator{staff}.")
            return
        user.groups.add(group)
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        self.stdout.write(f"{user.username} is a moderator.")
