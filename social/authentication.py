"""Bearer JWT authentication of users.

``SafeJWTAuthentication`` is simplejwt's, answering 401 (never 500) for a token
naming no valid user. ``CachedUserJWTAuthentication`` checks the user in the
author cache instead of PostgreSQL, for views that need only the reader's id.
The two OpenAPI extensions document both as the bearer scheme they are.
"""
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from redis.exceptions import RedisError
from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.settings import api_settings

from core import redis as core_redis
from core import throttling

from . import cache as author_cache


class SafeJWTAuthentication(JWTAuthentication):
    def get_user(self, validated_token):
        try:
            return super().get_user(validated_token)
        except (ValueError, TypeError):  # a user id claim that is not an id
            raise exceptions.AuthenticationFailed("Token contained no recognizable user identification") from None


class ReaderUser:
    """The authenticated user of a read-only view: an id, known to exist and be active."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, user_id: int):
        self.id = self.pk = user_id


class CachedUserJWTAuthentication(SafeJWTAuthentication):
    """JWT authentication that checks the user in the author cache instead of PostgreSQL.

    For views that need only the user's id (timeline reads): the author cache
    holds ``active`` and is refreshed after every change to a user, so a
    suspended user is refused as with a database lookup, one Redis GET instead
    of one query per request (the largest item in the read path's profile).

    The view's rate limit, when counted by user, is asked for in the same round
    trip (``core.throttling.prefetch``), and so may the view's own first Redis
    reads: its ``prefetch(round_trip, request, user_id)`` queues them on the
    ``core.redis.RoundTrip`` before it is made (the cached timeline).
    """

    def authenticate(self, request):
        header = self.get_header(request)
        raw_token = self.get_raw_token(header) if header is not None else None
        if raw_token is None:
            return None
        validated_token = self.get_validated_token(raw_token)
        user_id = self._user_id(validated_token)
        round_trip = core_redis.RoundTrip()
        summary = author_cache.prefetch(round_trip, user_id)
        view = request.parser_context.get("view") if request.parser_context else None
        scope = getattr(view, "throttle_scope", None)
        if scope and throttling.counted_by_user(scope):
            throttling.prefetch(round_trip, request=request, scope=scope, user_id=user_id)
        if view is not None and hasattr(view, "prefetch"):
            view.prefetch(round_trip, request, user_id)
        try:
            round_trip.execute()
        except RedisError:
            pass  # each part asks again on its own, and falls back as it does without Redis
        summaries = author_cache.get_or_fill_many([user_id], prefetched=summary)
        return self._reader(user_id, summaries.get(user_id)), validated_token

    def get_user(self, validated_token):
        user_id = self._user_id(validated_token)
        return self._reader(user_id, author_cache.get_or_fill_many([user_id]).get(user_id))

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

    @staticmethod
    def _reader(user_id: int, summary: dict | None) -> ReaderUser:
        if summary is None:
            raise exceptions.AuthenticationFailed("User not found", code="user_not_found")
        if not summary["active"]:
            raise exceptions.AuthenticationFailed("User is inactive", code="user_inactive")
        return ReaderUser(user_id)


class SafeJWTScheme(SimpleJWTScheme):
    """Documents ``SafeJWTAuthentication`` as the bearer JWT scheme it is."""

    target_class = "social.authentication.SafeJWTAuthentication"


class CachedUserJWTScheme(SimpleJWTScheme):
    """The read views' ``CachedUserJWTAuthentication``: the same bearer token, checked against the author cache."""

    target_class = "social.authentication.CachedUserJWTAuthentication"
    name = "readerJwtAuth"
