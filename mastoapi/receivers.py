"""What the Mastodon API does when django-oauth-toolkit's access tokens change: its token cache
(``tokens``) forgets them once the change commits. Connected in ``apps.MastoapiConfig.ready``."""
from django.db import transaction

from . import tokens


def access_token_deleted_forget(sender, instance, **kwargs) -> None:
    transaction.on_commit(lambda: tokens.forget(instance.token_checksum, revoked=True), robust=True)


def access_token_changing_forget(sender, instance, **kwargs) -> None:
    """A stored token about to change (its scopes, its expiry, or its value: django-oauth-toolkit
    reuses the row when refresh tokens are not rotated): the old value's entry is forgotten,
    marked revoked if the value changes."""
    if instance._state.adding or instance.pk is None:
        return
    old = sender.objects.filter(pk=instance.pk).values_list("token_checksum", flat=True).first()
    if old is not None:
        replaced = old != instance.token_checksum
        transaction.on_commit(lambda: tokens.forget(old, revoked=replaced), robust=True)
