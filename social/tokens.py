"""Refresh tokens: issued, rotated and revoked, always against PostgreSQL.

Every refresh token simplejwt issues is recorded (``OutstandingToken``, by its
``jti``); revoking one adds it to ``BlacklistedToken``. A refresh
(``refresh_token_rotate``) revokes the token it was given and issues a new one
in one transaction: the revocation is an insert that only one of two
concurrent refreshes with the same token can make, so a token is used once at
most. The user is read (``FOR SHARE``) from PostgreSQL, never from the author
cache, so a suspended or deleted user is refused at once, and a suspension
(``refresh_tokens_revoke_all``, from ``services.user_suspend``) waits for a
refresh in flight and then revokes the token it issued too.
"""
from django.db import transaction
from rest_framework import exceptions
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, UntypedToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from core.exceptions import Forbidden

from .models import User


def _parse(raw: str) -> tuple[UntypedToken, int]:
    """A signed, unexpired refresh token (revoked or not) and its user's id; else ``InvalidToken``."""
    try:
        # Checks the signature and expiry, not the blacklist. simplejwt annotates the
        # encoded token as a Token; it takes the string.
        token = UntypedToken(raw)  # type: ignore[arg-type]
    except TokenError as error:
        raise InvalidToken(str(error)) from None
    if token.get(api_settings.TOKEN_TYPE_CLAIM) != RefreshToken.token_type:
        raise InvalidToken("Token has wrong type")
    user_id = token.payload.get(api_settings.USER_ID_CLAIM)
    if type(user_id) is str and user_id.isascii() and user_id.isdigit():
        user_id = int(user_id)
    if type(user_id) is not int or not 0 < user_id < 1 << 63:
        raise InvalidToken("Token contained no recognizable user identification")
    return token, user_id


def _active_user_shared(user_id: int) -> User:
    """The token's user, locked ``FOR SHARE`` (a suspension waits, and is waited for); 401 unless active."""
    found = list(User.objects.raw(f"SELECT * FROM {User._meta.db_table} WHERE id = %s AND is_active FOR SHARE",
                                  [user_id]))
    if not found:
        raise exceptions.AuthenticationFailed("No active account found for the given token.",
                                              code="no_active_account")
    return found[0]


def _revoke(token: UntypedToken, user_id: int) -> bool:
    """Blacklist ``token``; whether this call did (``False``: it was already revoked)."""
    outstanding, _ = OutstandingToken.objects.get_or_create(jti=token[api_settings.JTI_CLAIM], defaults={
        "user_id": user_id, "token": str(token), "created_at": token.current_time,
        "expires_at": datetime_from_epoch(token["exp"])})
    _, created = BlacklistedToken.objects.get_or_create(token=outstanding)
    return created


@transaction.atomic
def refresh_token_rotate(*, refresh: str) -> dict[str, str]:
    """``{"access", "refresh"}`` for a valid refresh token of an active user, which is revoked.

    ``InvalidToken`` (401) for a token that is malformed, expired, revoked or
    of no active user, also when a concurrent refresh used it first.
    """
    token, user_id = _parse(refresh)
    user = _active_user_shared(user_id)
    if not _revoke(token, user_id):
        raise InvalidToken("Token is blacklisted")
    new = RefreshToken.for_user(user)  # recorded as outstanding
    return {"access": str(new.access_token), "refresh": str(new)}


@transaction.atomic
def refresh_token_revoke(*, refresh: str, user: User) -> None:
    """Log out: revoke ``user``'s refresh token; idempotent. ``InvalidToken`` if it is not a
    signed, unexpired refresh token, ``TokenNotYours`` (403) if it is another user's."""
    token, user_id = _parse(refresh)
    if user_id != user.id:
        raise Forbidden("This refresh token belongs to another user.")
    _revoke(token, user_id)


def refresh_tokens_revoke_all(*, user_id: int) -> int:
    """Revoke every unrevoked refresh token of the user (in the caller's transaction); how many."""
    pending = list(OutstandingToken.objects.filter(user_id=user_id, blacklistedtoken__isnull=True)
                   .values_list("id", flat=True))
    BlacklistedToken.objects.bulk_create([BlacklistedToken(token_id=i) for i in pending], ignore_conflicts=True)
    return len(pending)
