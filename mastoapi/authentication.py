"""Who is calling the Mastodon API, and with which scopes.

A bearer token is either an OAuth access token django-oauth-toolkit issued
(looked up by its checksum, as its own validator does) or a ``/v1`` JWT, which
carries every scope: the same account either way. A suspended user's tokens
are refused (401), as ``/v1`` refuses their JWTs. A client-credentials token
has an app but no user: it reaches only what needs no account.
"""
import hashlib
from dataclasses import dataclass

from django.utils import timezone
from oauth2_provider.models import get_access_token_model
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from core.exceptions import ApplicationError
from social.authentication import SafeJWTAuthentication

from . import scopes


@dataclass(frozen=True)
class Grant:
    """What a request's token allows (``request.auth``)."""

    scopes: frozenset[str]
    token: object | None = None  # the OAuth AccessToken; None for a /v1 JWT
    application: object | None = None


_INVALID = "The access token is invalid"


class MastodonAuthentication(BaseAuthentication):
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
            found = SafeJWTAuthentication().authenticate(request)
            if found is None:
                raise exceptions.AuthenticationFailed(_INVALID)
            return found[0], Grant(scopes=frozenset(scopes.ALL))
        checksum = hashlib.sha256(raw.encode()).hexdigest()
        token = (get_access_token_model().objects.select_related("user", "application")
                 .filter(token_checksum=checksum).first())
        if token is None or token.expires <= timezone.now():
            raise exceptions.AuthenticationFailed(_INVALID)
        if token.user is not None and not token.user.is_active:
            raise exceptions.AuthenticationFailed("Your login is currently disabled")
        return token.user, Grant(scopes=frozenset(token.scope.split()), token=token, application=token.application)

    def authenticate_header(self, request):
        return 'Bearer realm="Mastodon"'


class NeedsUser(ApplicationError):
    status_code = 422


class HasScope(BasePermission):
    """The view's ``required_scopes[method]`` must be covered by the token's scopes, and,
    unless the view sets ``app_token_allowed``, the token must stand for a user."""

    def has_permission(self, request, view):
        grant = request.auth
        if not isinstance(grant, Grant):
            raise exceptions.NotAuthenticated(_INVALID)
        method = "GET" if request.method == "HEAD" else request.method
        required = getattr(view, "required_scopes", {}).get(method)
        if required and not scopes.covers(grant.scopes, required):
            raise exceptions.PermissionDenied("This action is outside the authorized scopes")
        if request.user is None and not getattr(view, "app_token_allowed", False):
            raise NeedsUser("This method requires an authenticated user")
        return True
