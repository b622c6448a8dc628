"""What the Mastodon API does when django-oauth-toolkit's tokens change: its token cache
(``tokens``) forgets them once the change commits. Connected in ``apps.MastoapiConfig.ready``."""
from django.db import transaction

from . import tokens


def access_token_deleted_forget(sender, instance, **kwargs) -> None:
    transaction.on_commit(lambda: tokens.forget(instance.token_checksum, revoked=True), robust=True)


def access_token_saved_forget(sender, instance, created: bool, **kwargs) -> None:
    if not created:
        transaction.on_commit(lambda: tokens.forget(instance.token_checksum, revoked=False), robust=True)
