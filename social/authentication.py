"""Bearer JWT authentication of users.

``SafeJWTAuthentication`` is simplejwt's, answering 401 (never 500) for a token
naming no valid user. ``CachedUserJWTAuthentication`` checks the user in the
author cache instead of PostgreSQL, for views that need only the reader's id,
in the request's first Redis round trip (``reader_first_round_trip``), which
any authentication of such views may make.
The two OpenAPI extensions document both as the bearer scheme they are.
"""
from collections.abc import Callable

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings

from core import redis as core_redis
from core import throttling
from core.request_notes import ReadsFirst, notes_of

from . import cache as author_cache
from .models import User, token_version_current
from .readers import ReaderUser


def token_version_check(claims, current: int) -> None:
    """401 for a token issued under an older ``token_version`` than the user's ``current``
    one (a new password or a suspension since: ``User.save``)."""
    if not token_version_current(claims, current):
        raise exceptions.AuthenticationFailed("Token was revoked: the account's sessions ended.",
                                              code="token_revoked")


class SafeJWTAuthentication(JWTAuthentication):
    def get_user(self, validated_token):
        try:
            user: User = super().get_user(validated_token)  # type: ignore[assignment]  # AUTH_USER_MODEL
        except (ValueError, TypeError):  # a user id claim that is not an id
            raise exceptions.AuthenticationFailed("Token contained no recognizable user identification") from None
        token_version_check(validated_token, user.token_version)  # not after a new password or a suspension
        return user


def reader_first_round_trip(request, user_id: int, claims=None,
                            along: Callable[[core_redis.RoundTrip], Callable[[], None]] | None = None
                            ) -> ReaderUser:
    """Check ``user_id`` in the author cache, for a view that needs only the reader's id:
    ``ReaderUser(user_id)``, or 401 for a user deleted or suspended (or, given a JWT's
    ``claims``, for a token issued before the user's sessions ended: ``token_version``).

    The author cache holds ``active`` and is refreshed after every change to a
    user, so a suspended user is refused as with a database lookup, one Redis
    GET instead of one query per request. That GET is the request's first round
    trip (``core.redis.RoundTrip``), and with it go the view's rate limit, when
    counted by user (``core.throttling.prefetch``), and the first reads the view
    declares (``core.request_notes.ReadsFirst``): all noted in the request's
    ``RequestNotes`` for the throttle and the view. ``along``: the authentication's own
    reads for the same trip (queued when it is called), and the check it returns, run once
    the trip is made and before the user's (raising to refuse the request).
    """
    round_trip = core_redis.RoundTrip()
    summary = author_cache.prefetch(round_trip, user_id)
    view = request.parser_context.get("view") if request.parser_context else None
    scope = getattr(view, "throttle_scope", None)
    if scope and throttling.counted_by_user(scope):
        throttling.prefetch(round_trip, request=request, scope=scope, user_id=user_id)
    if isinstance(view, ReadsFirst):
        first_reads = view.first_reads()
        first_reads.queue(round_trip, request=request, user_id=user_id)
        notes_of(request).first_reads = first_reads
    check = along(round_trip) if along is not None else None
    try:
        round_trip.execute()
    except core_redis.FAILURES:
        pass  # each part asks again on its own, and falls back as it does without Redis
    if check is not None:
        check()
    return reader_of(user_id, author_cache.get_or_fill_many([user_id], prefetched=summary).get(user_id), claims)


def reader_of(user_id: int, cached: author_cache.CachedUser | None, claims=None) -> ReaderUser:
    """``ReaderUser(user_id)`` if the author cache says the user exists and is active (and,
    given a JWT's ``claims``, that it was issued under the current token version); else 401."""
    if cached is None:
        raise exceptions.AuthenticationFailed("User not found", code="user_not_found")
    if not cached.active:
        raise exceptions.AuthenticationFailed("User is inactive", code="user_inactive")
    if claims is not None:
        token_version_check(claims, cached.token_version)
    return ReaderUser(user_id)


class CachedUserJWTAuthentication(SafeJWTAuthentication):
    """JWT authentication that checks the user in the author cache instead of PostgreSQL,
    for views that need only the user's id (timeline reads): ``reader_first_round_trip``."""

    def authenticate(self, request):
        header = self.get_header(request)
        raw_token = self.get_raw_token(header) if header is not None else None
        if raw_token is None:
            return None
        validated_token = self.get_validated_token(raw_token)
        return reader_first_round_trip(request, self._user_id(validated_token), validated_token), validated_token

    def get_user(self, validated_token):
        user_id = self._user_id(validated_token)
        return reader_of(user_id, author_cache.get_or_fill_many([user_id]).get(user_id), validated_token)

    @staticmethod
    def _user_id(validated_token) -> int:
        try:
            user_id = int(validated_token[api_settings.USER_ID_CLAIM])
        except KeyError:
            raise InvalidToken("Token contained no recognizable user identification") from None
        except (ValueError, TypeError):
            raise exceptions.AuthenticationFailed("Token contained no recognizable user identification") from None
        if not 0 < user_id < 1 << 63:
            raise exceptions.AuthenticationFailed("Token contained no recognizable user identification")
        return user_id


class SafeJWTScheme(SimpleJWTScheme):
    """Documents ``SafeJWTAuthentication`` as the bearer JWT scheme it is."""

    target_class = "social.authentication.SafeJWTAuthentication"


class CachedUserJWTScheme(SimpleJWTScheme):
    """The read views' ``CachedUserJWTAuthentication``: the same bearer token, checked against the author cache."""

    target_class = "social.authentication.CachedUserJWTAuthentication"
    name = "readerJwtAuth"
