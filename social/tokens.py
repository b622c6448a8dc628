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

A refresh token carries its login's *family* (``fam``: the first token's
``jti``, handed on by every rotation) and the user's ``token_version`` (``tv``,
copied into its access tokens). A token already revoked that is presented again
(``refresh_token_rotate``) is a replay of a rotated token, a stolen copy or the
original: every unrevoked token of its family is revoked (committed before the
401), so the thief and the victim both sign in again; a token issued before
families existed (no ``fam``) revokes all of its user's refresh tokens.

``services.sessions_end`` ends every session of a user: the refresh tokens
(``refresh_tokens_revoke_all``) and, through ``signals.sessions_ended``, the
OAuth tokens. ``User.save`` has it called for a new password and a suspension,
and bumps ``token_version``, so the user's outstanding access tokens are refused
too (``social.authentication``).
"""
import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework_simplejwt.exceptions import InvalidToken, TokenBackendError, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, UntypedToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from core.exceptions import Forbidden

from .models import TOKEN_VERSION_CLAIM, User, token_version_current

logger = logging.getLogger(__name__)

FAMILY_CLAIM = "fam"


class SessionRefreshToken(RefreshToken):
    """A refresh token with its login's family and the user's token version (copied into
    its access tokens), recorded as outstanding with them."""

    @classmethod
    def for_user(cls, user: User, family: str | None = None) -> "SessionRefreshToken":  # type: ignore[override]
        token = cls()
        token[api_settings.USER_ID_CLAIM] = str(user.id)
        token[TOKEN_VERSION_CLAIM] = user.token_version
        token[FAMILY_CLAIM] = family or token[api_settings.JTI_CLAIM]
        OutstandingToken.objects.create(user=user, jti=token[api_settings.JTI_CLAIM], token=str(token),
                                        created_at=token.current_time,
                                        expires_at=datetime_from_epoch(token["exp"]))
        return token


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


def refresh_token_rotate(*, refresh: str) -> dict[str, str]:
    """``{"access", "refresh"}`` for a valid refresh token of an active user, which is revoked;
    the new token is of the same family.

    ``InvalidToken`` (401) for a token that is malformed, expired, revoked or
    of no active user, also when a concurrent refresh used it first. A revoked
    one revokes its family first (``family_revoke``, committed).
    """
    token, user_id = _parse(refresh)
    with transaction.atomic():
        user = _active_user_shared(user_id)
        if not token_version_current(token.payload, user.token_version):
            raise InvalidToken("Token was revoked: the account's sessions ended.")
        if _revoke(token, user_id):
            new = SessionRefreshToken.for_user(user, family=token.get(FAMILY_CLAIM))  # recorded as outstanding
            return {"access": str(new.access_token), "refresh": str(new)}
    revoked = family_revoke(user_id=user_id, family=token.get(FAMILY_CLAIM))
    logger.warning("user %s presented a revoked refresh token again: %d refresh tokens of its family revoked",
                   user_id, revoked)
    raise InvalidToken("Token is blacklisted")


@transaction.atomic
def family_revoke(*, user_id: int, family: object) -> int:
    """Revoke every unrevoked refresh token of ``user_id`` in ``family`` (all of the user's
    if ``family`` is not a family's name: a token issued before families); how many."""
    if not isinstance(family, str):
        return refresh_tokens_revoke_all(user_id=user_id)
    pending = [row[0] for row in _unrevoked(user_id) if _claims(row[1]).get(FAMILY_CLAIM) == family]
    BlacklistedToken.objects.bulk_create([BlacklistedToken(token_id=i) for i in pending], ignore_conflicts=True)
    return len(pending)


def _unrevoked(user_id: int) -> list[tuple[int, str, datetime | None, datetime]]:
    """(id, token, created, expires) of the user's refresh tokens neither revoked nor expired, oldest first."""
    return list(OutstandingToken.objects.filter(user_id=user_id, blacklistedtoken__isnull=True,
                                                expires_at__gt=timezone.now())
                .order_by("id").values_list("id", "token", "created_at", "expires_at"))


def _claims(raw: str) -> dict:
    """The claims of a token this server recorded (its signature was checked when it was used)."""
    try:
        return token_backend.decode(raw, verify=False)  # type: ignore[arg-type]
    except TokenBackendError:
        return {}


@dataclass(frozen=True)
class JwtSession:
    """A ``/v1`` sign-in: its live refresh token (never shown), as the sessions list shows it."""

    outstanding_id: int
    family: str | None
    created: datetime
    expires: datetime


def jwt_sessions(*, user_id: int) -> list[JwtSession]:
    """The user's ``/v1`` sign-ins that can still refresh: one per live refresh token."""
    sessions = []
    for outstanding_id, raw, created, expires in _unrevoked(user_id):
        family = _claims(raw).get(FAMILY_CLAIM)
        if created is None:  # simplejwt's column allows it; its tokens always set it
            created = expires - api_settings.REFRESH_TOKEN_LIFETIME
        sessions.append(JwtSession(outstanding_id=outstanding_id, family=family if isinstance(family, str) else None,
                                   created=created, expires=expires))
    return sessions


@transaction.atomic
def jwt_session_revoke(*, user_id: int, outstanding_id: int) -> bool:
    """Revoke the user's live refresh token ``outstanding_id`` (signing that session out once
    its access token expires); whether there was one to revoke (another user's is not)."""
    found = OutstandingToken.objects.filter(id=outstanding_id, user_id=user_id, blacklistedtoken__isnull=True,
                                            expires_at__gt=timezone.now()).exists()
    if found:
        BlacklistedToken.objects.get_or_create(token_id=outstanding_id)
    return found


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
