"""Who is calling the Mastodon API, and with which scopes.

A bearer token is either an OAuth access token django-oauth-toolkit issued
(looked up by django-oauth-toolkit, the result cached in Redis: ``tokens``) or
a ``/v1`` JWT, which carries every scope: the same account either way. A
suspended user's tokens are refused (401), as ``/v1`` refuses their JWTs. A
client-credentials token has an app but no user: it reaches only what needs no
account.

``MastodonAuthentication`` answers the user's row; ``MastodonReaderAuthentication``,
for views that need only the reader's id (the home timeline), answers a
``ReaderUser`` checked in the author cache in the request's first Redis round
trip, as ``/v1``'s reads do: with the token cached, no query at all, and with the token
recalled by the process, no round trip of the token's own either (``tokens``).
"""
from dataclasses import dataclass
from functools import cached_property

from oauth2_provider.models import get_application_model
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from core.exceptions import ApplicationError
from social.authentication import CachedUserJWTAuthentication, SafeJWTAuthentication, reader_first_round_trip
from social.models import User

from . import scopes, tokens


@dataclass(frozen=True)
class Grant:
    """What a request's token allows (``request.auth``)."""

    scopes: frozenset[str]
    application_id: int | None = None  # None for a /v1 JWT

    @cached_property
    def application(self):
        """The OAuth app the token was issued to (read when asked for), or None."""
        if self.application_id is None:
            return None
        return get_application_model().objects.select_related("mastodon").filter(id=self.application_id).first()


_INVALID = "The access token is invalid"
OUTSIDE_SCOPES = "This action is outside the authorized scopes"


def scope_admits(grant: Grant, request, view) -> bool:
    """Whether ``grant``'s scopes cover the view's ``required_scopes`` for the request's
    method (HEAD as GET); a method the view names no scope for needs none."""
    method = "GET" if request.method == "HEAD" else request.method
    required = getattr(view, "required_scopes", {}).get(method)
    return not required or scopes.covers(grant.scopes, required)


class MastodonAuthentication(BaseAuthentication):
    jwt_authentication = SafeJWTAuthentication

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(_INVALID)
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_INVALID) from None
        if raw.count(".") == 2:  # a /v1 JWT (OAuth tokens here are opaque, without dots)
            found = self.jwt_authentication().authenticate(request)
            if found is None:
                raise exceptions.AuthenticationFailed(_INVALID)
            return found[0], Grant(scopes=frozenset(scopes.ALL))
        return self.authenticate_token(request, raw)

    def authenticate_token(self, request, raw: str):
        """(user, grant) for the OAuth access token ``raw`` (a 401 if it is not valid)."""
        token, user = tokens.lookup(request, raw)
        if token is None:
            raise exceptions.AuthenticationFailed(_INVALID)
        grant = Grant(scopes=token.scopes, application_id=token.application_id)
        if token.user_id is None:
            return None, grant
        return self.user_of(request, token.user_id, read=user, grant=grant), grant

    def user_of(self, request, user_id: int, *, grant: Grant, read=None):
        """The token's user, as the view needs it (``read``: the row, if the lookup read it)."""
        user = read if read is not None else User.objects.filter(id=user_id).first()
        if user is None:
            raise exceptions.AuthenticationFailed(_INVALID)
        if not user.is_active:
            raise exceptions.AuthenticationFailed("Your login is currently disabled")
        return user

    def authenticate_header(self, request):
        return 'Bearer realm="Mastodon"'


class MastodonReaderAuthentication(MastodonAuthentication):
    """For views that need only the reader's id: ``social.authentication.reader_first_round_trip``
    checks the user in the author cache (refreshed on every change to a user, so a
    suspension is refused within seconds), with the view's first reads in the same trip.
    An OAuth token outside the view's scopes is refused (403) before that trip; a token
    the process recalls (``tokens.recall``) is confirmed in that trip instead of a GET
    of its own before it, and refused after it if the cache no longer holds what it recalled."""

    jwt_authentication = CachedUserJWTAuthentication

    def authenticate_token(self, request, raw: str):
        """A token this process recalls (``tokens.recall``) is confirmed in the reader's first
        round trip, with no GET of its own before it; any other is looked up first."""
        recalled = tokens.recall(raw)
        if recalled is None or recalled.token.user_id is None or not scope_admits(
                Grant(scopes=recalled.token.scopes), request, _view_of(request)):
            return super().authenticate_token(request, raw)
        confirmed: list[Grant] = []

        def along(round_trip):
            reply = tokens.prefetch(round_trip, recalled)

            def check() -> None:
                token, _ = tokens.confirm(request, recalled, reply)
                if token is None:
                    raise exceptions.AuthenticationFailed(_INVALID)
                if token.user_id != recalled.token.user_id:
                    raise _AnotherUser
                grant = Grant(scopes=token.scopes, application_id=token.application_id)
                if not scope_admits(grant, request, _view_of(request)):
                    raise exceptions.PermissionDenied(OUTSIDE_SCOPES)
                confirmed.append(grant)

            return check

        try:
            reader = self._reader(request, recalled.token.user_id, along=along)
        except _AnotherUser:  # the stored row was given to another user: looked up afresh
            return super().authenticate_token(request, raw)
        return reader, confirmed[0]

    def user_of(self, request, user_id: int, *, grant: Grant, read=None):
        # The round trip counts the rate limit and makes the view's first reads, which write
        # (a timeline read refreshes its TTL and marks its owner live): a token the view's
        # scopes refuse is refused before any of that, with HasScope's 403.
        if not scope_admits(grant, request, _view_of(request)):
            raise exceptions.PermissionDenied(OUTSIDE_SCOPES)
        return self._reader(request, user_id)

    @staticmethod
    def _reader(request, user_id: int, along=None):
        try:
            return reader_first_round_trip(request, user_id, along=along)
        except exceptions.AuthenticationFailed as exc:
            if exc.get_codes() == "user_inactive":
                raise exceptions.AuthenticationFailed("Your login is currently disabled") from None
            raise exceptions.AuthenticationFailed(_INVALID) from None


class _AnotherUser(Exception):
    """A recalled token found to stand for another user than it did."""


def _view_of(request):
    return request.parser_context.get("view") if request.parser_context else None


class NeedsUser(ApplicationError):
    status_code = 422


class HasScope(BasePermission):
    """The view's ``required_scopes[method]`` must be covered by the token's scopes, and,
    unless the view sets ``app_token_allowed``, the token must stand for a user."""

    def has_permission(self, request, view):
        grant = request.auth
        if not isinstance(grant, Grant):
            raise exceptions.NotAuthenticated(_INVALID)
        if not scope_admits(grant, request, view):
            raise exceptions.PermissionDenied(OUTSIDE_SCOPES)
        if request.user is None and not getattr(view, "app_token_allowed", False):
            raise NeedsUser("This method requires an authenticated user")
        return True
