"""What the Mastodon API does when django-oauth-toolkit's access tokens change: its token cache
(``tokens``) forgets them once the change commits; and when a user's sessions end (a new
password, a suspension: ``social.signals.sessions_ended``), every OAuth token and
authorization code of theirs is revoked. Connected in ``apps.MastoapiConfig.ready``."""
from django.db import transaction
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_grant_model, get_refresh_token_model

from . import tokens


def access_token_deleted_forget(sender, instance, **kwargs) -> None:
    checksum = instance.token_checksum
    transaction.on_commit(lambda: tokens.forget(checksum), robust=True)


def access_token_changing_forget(sender, instance, **kwargs) -> None:
    """A stored token about to change (its scopes, its expiry, or its value: django-oauth-toolkit
    reuses the row when refresh tokens are not rotated): once it commits, its entry holds what
    the saved row grants (overwritten, not dropped: a lookup that read the row before the change
    must not fill the old grant back), and an old value's entry is marked revoked."""
    if instance._state.adding or instance.pk is None:
        return
    old = sender.objects.filter(pk=instance.pk).values_list("token_checksum", flat=True).first()
    if old is None:
        return
    # Taken now: these are the values this save writes, whatever happens to the instance later.
    new, token = instance.token_checksum, tokens.granted(instance)

    def refresh() -> None:
        if old != new:
            tokens.forget(old)
        tokens.remember(new, token)

    transaction.on_commit(refresh, robust=True)


def sessions_ended_revoke_oauth_tokens(sender, user_id: int, **kwargs) -> None:
    """Revoke every OAuth token of the user, in the transaction that ends their sessions: the
    refresh tokens are marked revoked (so one presented again is refused, as after a rotation),
    the access tokens deleted (each marked revoked in the token cache once this commits:
    ``access_token_deleted_forget``), and the authorization codes not yet exchanged deleted."""
    now = timezone.now()
    refresh_tokens = get_refresh_token_model().objects.filter(user_id=user_id)
    with transaction.atomic():  # the caller's, or one of its own when the save was autocommitted
        # Wait first for any refresh in flight (it holds its old token's row): the statements
        # below, each with a snapshot of its own, then see the pair it made. One that starts
        # later waits on these rows, and finds its token revoked.
        list(refresh_tokens.select_for_update().values_list("id", flat=True))
        refresh_tokens.filter(revoked__isnull=True).update(revoked=now, updated=now)
        get_access_token_model().objects.filter(user_id=user_id).delete()
        get_grant_model().objects.filter(user_id=user_id).delete()
