"""django-oauth-toolkit, as Mastodon's OAuth server behaves.

Every app registered through ``POST /api/v1/apps`` may use the three grants
Mastodon offers (authorization code, with PKCE when the client sends a
challenge; password; client credentials), which django-oauth-toolkit would tie
to one grant type per app; a token may hold only scopes its app registered.
Tokens are issued and revoked by django-oauth-toolkit's own server
(``token_response``, ``revocation_response``): no token code is written here.
"""
import json
from urllib.parse import urlencode

from oauth2_provider.oauth2_backends import get_oauthlib_core
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import SettingsScopes

from . import scopes

GRANT_TYPES = ("authorization_code", "password", "client_credentials", "refresh_token")


class MastodonValidator(OAuth2Validator):
    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        return grant_type in GRANT_TYPES

    def validate_response_type(self, client_id, response_type, client, request, *args, **kwargs):
        return response_type == "code"


def registered_scopes(application) -> set[str]:
    profile = getattr(application, "mastodon", None)
    return set(profile.scopes.split()) if profile is not None else {"read"}


class AppScopes(SettingsScopes):
    """The scopes a token may ask for: those its app registered (and those they cover)."""

    def get_available_scopes(self, application=None, request=None, *args, **kwargs):
        if application is None:
            return list(scopes.ALL)
        return sorted(scopes.expand(registered_scopes(application)))

    def get_default_scopes(self, application=None, request=None, *args, **kwargs):
        return ["read"]  # Mastodon's default when a request names no scope


def _pairs(data) -> list[tuple[str, str]]:
    """The request's fields (a form's QueryDict or a JSON object) as form pairs."""
    if hasattr(data, "lists"):
        return [(key, value) for key, values in data.lists() for value in values if isinstance(value, str)]
    if isinstance(data, dict):
        return [(key, value if isinstance(value, str) else json.dumps(value))
                for key, value in data.items() if value is not None]
    return []


def _call(method: str, request) -> tuple[int, dict]:
    core = get_oauthlib_core()
    headers = core.extract_headers(request._request)
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    uri = request._request.build_absolute_uri()
    handler = getattr(core.server, method)
    _headers, body, status = handler(uri, "POST", urlencode(_pairs(request.data)), headers)
    try:
        payload = json.loads(body) if body else {}
    except ValueError:
        payload = {"error": body}
    return status, payload


def token_response(request) -> tuple[int, dict]:
    """(status, body) of ``POST /oauth/token`` for a DRF request: the token, or the OAuth error."""
    return _call("create_token_response", request)


def revocation_response(request) -> tuple[int, dict]:
    """(status, body) of ``POST /oauth/revoke``: ``{}`` once the token is revoked."""
    return _call("create_revocation_response", request)
