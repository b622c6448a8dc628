"""The writes only the Mastodon API has: registering a client app (and which redirect
URIs it may register) and moving a read position (marker). Everything else it does
is a call to the product's own services."""
import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import get_application_model

from core.exceptions import Conflict

from . import scopes as mastodon_scopes
from .models import AppProfile, Marker

OOB = "urn:ietf:wg:oauth:2.0:oob"
TIMELINES = ("home",)
# Plain http only back to the user's own machine (a desktop app's loopback callback, RFC 8252 §7.3).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
# Schemes a browser runs, reads local files with or shows inline rather than hand to an app.
BROWSER_SCHEMES = frozenset({"javascript", "vbscript", "data", "file", "blob", "filesystem", "about",
                             "view-source", "urn"})
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")


def redirect_uri_problem(uri: str) -> str | None:
    """Why ``uri`` may not be an app's redirect URI (Mastodon's wording), or None: an
    https URI, http back to a loopback host, an app's own scheme (``com.example.app:/cb``,
    ``myapp://callback``) or ``urn:ietf:wg:oauth:2.0:oob`` (the code shown to paste), with
    no fragment. Refused: schemes a browser runs or reads itself (``javascript:``,
    ``data:``, ``file:``, ...), plain http to any other host."""
    if uri == OOB:
        return None
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in uri):
        return "Redirect URI must not contain spaces or control characters."
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not _SCHEME.fullmatch(scheme) or not (parts.netloc or parts.path):
        return "Redirect URI must be an absolute URI."
    if "#" in uri:
        return "Redirect URI cannot contain a fragment."
    try:
        host = parts.hostname
    except ValueError:
        host = None
    if scheme == "https":
        return None if host else "Redirect URI must be an absolute URI."
    if scheme == "http":
        return None if host in LOOPBACK_HOSTS else (
            "Redirect URI must use https (plain http only to 127.0.0.1, [::1] or localhost).")
    if scheme in BROWSER_SCHEMES:
        return f"Redirect URI cannot use the {scheme}: scheme."
    return None


@transaction.atomic
def app_register(*, name: str, redirect_uris: list[str], scopes: list[str], website: str = ""):
    """Register a client (a confidential OAuth client that may use every grant Mastodon
    offers): (the application, its client secret in clear, shown this once)."""
    unknown = [s for s in scopes if s not in mastodon_scopes.ALL]
    if unknown:
        raise ValidationError({"scopes": [f"Unknown scope: {', '.join(unknown)}."]})
    for uri in redirect_uris:
        problem = redirect_uri_problem(uri)
        if problem is not None:
            raise ValidationError(problem)  # Mastodon's "Validation failed: Redirect URI ..."
    Application = get_application_model()
    secret = generate_client_secret()
    app = Application.objects.create(
        name=name, client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=" ".join(redirect_uris), client_secret=secret, algorithm=Application.NO_ALGORITHM)
    AppProfile.objects.create(application=app, scopes=" ".join(scopes), website=website)
    return app, secret


def marker_set(*, user_id: int, timeline: str, last_read_id: int, version: int | None = None) -> Marker:
    """Move the user's read position in ``timeline``; its version goes up by one.

    An update is made against the version it read: if another device moved the
    marker in between, or the caller names a ``version`` that is no longer the
    current one, it is refused with ``Conflict`` (409) and the caller reads again.
    """
    now = timezone.now()
    current = Marker.objects.filter(user_id=user_id, timeline=timeline).first()
    if current is None:
        if version not in (None, 0):
            raise Conflict("Conflict during update, please try again")
        try:
            with transaction.atomic():
                return Marker.objects.create(user_id=user_id, timeline=timeline, last_read_id=last_read_id,
                                             version=0, updated_at=now)
        except IntegrityError:  # another device created it first
            raise Conflict("Conflict during update, please try again") from None
    if version is not None and version != current.version:
        raise Conflict("Conflict during update, please try again")
    updated = Marker.objects.filter(id=current.id, version=current.version).update(
        last_read_id=last_read_id, version=F("version") + 1, updated_at=now)
    if not updated:
        raise Conflict("Conflict during update, please try again")
    current.refresh_from_db()
    return current
