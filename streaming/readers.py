"""The stream process's synchronous work, run in its small thread pool (``hub``): who a
stream belongs to, whom they follow, a tweet as each API shows it, and a ``/v1`` resume.

Every function here goes through the same doors as the request views: the
Mastodon API's ``MastodonAuthentication`` and ``/v1``'s ``SafeJWTAuthentication``,
the token cache, the author cache, ``tweets_hydrate`` (so a deleted tweet or a
suspended author is never shown) and ``timeline_page_for_user`` (a resume reads
what ``since`` reads). Each starts with ``close_old_connections``, as a request
does, so a PostgreSQL connection that broke or aged is replaced.
"""
from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field

import orjson
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework_simplejwt.exceptions import TokenError

from mastoapi import entities as mastodon_entities
from mastoapi import scopes, tokens
from mastoapi import selectors as mastodon_selectors
from mastoapi.authentication import MastodonAuthentication
from social import cache as author_cache
from social.authentication import SafeJWTAuthentication
from social.models import TOKEN_VERSION_CLAIM, Follow, token_version_current
from timelines.selectors import timeline_page_for_user
from tweets.selectors import tweets_hydrate

logger = logging.getLogger(__name__)

# What a home stream needs of an OAuth token: reading statuses ("read" covers it).
READ_SCOPE = "read:statuses"
JWT = "jwt"
OAUTH = "oauth"


class Refused(Exception):
    """A stream is not opened: ``status`` and ``message`` say why, as the API would."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Credential:
    """Who a stream belongs to, and what to check again while it is open."""

    user_id: int
    kind: str  # JWT or OAUTH
    token: str
    claims: dict = field(compare=False, hash=False)  # a JWT's (its expiry, its token version); {} for OAuth


def request_of(scope: dict, token: str | None) -> ASGIRequest:
    """A Django request standing for the stream's opening request: its host and scheme
    (for absolute URLs and ``ALLOWED_HOSTS``), with ``token`` as its bearer token."""
    scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"), scope.get("scheme", "http"))
    headers = [(name, value) for name, value in scope.get("headers", []) if name != b"authorization"]
    if token:
        headers.append((b"authorization", b"Bearer " + token.encode("latin-1")))
    http_scope = dict(scope, type="http", method="GET", scheme=scheme, headers=headers)
    return ASGIRequest(http_scope, io.BytesIO())


def base_of(request: ASGIRequest) -> str:
    """The API's base URL, which the Mastodon entities link to: ``SITE_URL``, else the
    request's own, with the web's ``PORT`` for the stream's own ``STREAM_PORT``."""
    if settings.SITE_URL:
        return settings.SITE_URL.rstrip("/")
    base = request.build_absolute_uri("/").rstrip("/")
    suffix = f":{settings.STREAM_PORT}"
    return base.removesuffix(suffix) + f":{settings.WEB_PORT}" if base.endswith(suffix) else base


def authenticate(request: ASGIRequest, *, mastodon: bool) -> Credential:
    """The stream's owner, as the API's views authenticate them: a ``/v1`` JWT, or (for the
    Mastodon API) an OAuth token with a user and the ``read`` scope too. ``Refused`` otherwise."""
    close_old_connections()
    drf_request = Request(request)
    raw = _bearer(request)
    if raw is None:
        raise Refused(401, "Missing access token")
    try:
        if raw.count(".") == 2:  # a /v1 JWT (the Mastodon API takes them as well)
            jwt = SafeJWTAuthentication()
            validated = jwt.get_validated_token(raw.encode())
            user = jwt.get_user(validated)
            if not user.is_active:
                raise exceptions.AuthenticationFailed("Your login is currently disabled")
            # What the re-checks read of it, no more (a stream holds it for hours).
            payload = validated.payload
            claims = {name: payload[name] for name in ("exp", TOKEN_VERSION_CLAIM) if name in payload}
            return Credential(user_id=user.id, kind=JWT, token=raw, claims=claims)
        if not mastodon:
            raise Refused(401, "Given token not valid for any token type")
        found = MastodonAuthentication().authenticate(drf_request)
    except (exceptions.AuthenticationFailed, exceptions.NotAuthenticated, TokenError) as error:
        raise Refused(401, _detail(error)) from None
    except exceptions.APIException as error:
        raise Refused(error.status_code, _detail(error)) from None
    if found is None:
        raise Refused(401, "Missing access token")
    user, grant = found
    if user is None:
        raise Refused(422, "This method requires an authenticated user")
    if not scopes.covers(grant.scopes, READ_SCOPE):
        raise Refused(403, "This action is outside the authorized scopes")
    return Credential(user_id=user.id, kind=OAUTH, token=raw, claims={})


def _bearer(request: ASGIRequest) -> str | None:
    parts = request.META.get("HTTP_AUTHORIZATION", "").split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    return parts[1]


def _detail(error: Exception) -> str:
    detail = getattr(error, "detail", None)
    if isinstance(detail, dict):
        detail = detail.get("detail", detail)
    return str(detail or error)


class _Recheck:
    """What the token lookup needs of a request when no client is asking: a method and a URI
    (django-oauth-toolkit's validator is handed them; the token alone decides)."""

    method = "GET"

    @staticmethod
    def build_absolute_uri() -> str:
        return "http://localhost/"


def revoked(credentials: list[Credential]) -> set[Credential]:
    """Those of ``credentials`` no longer good: the user suspended or deleted, the JWT
    expired or issued before the user's sessions ended, the OAuth token revoked or
    expired. One read of the author cache for all the users; an OAuth token is one
    token-cache GET (PostgreSQL when it is not cached)."""
    close_old_connections()
    users = author_cache.get_or_fill_many(sorted({c.user_id for c in credentials}))
    now = time.time()
    gone = set()
    oauth_users: dict[str, int | None] = {}
    for credential in credentials:
        user = users.get(credential.user_id)
        if user is None or not user.active:
            gone.add(credential)
        elif credential.kind == JWT:
            if credential.claims.get("exp", 0) <= now or not token_version_current(credential.claims,
                                                                                   user.token_version):
                gone.add(credential)
        else:
            if credential.token not in oauth_users:
                token, _ = tokens.lookup(_Recheck(), credential.token)
                oauth_users[credential.token] = None if token is None else token.user_id
            if oauth_users[credential.token] != credential.user_id:
                gone.add(credential)
    return gone


def followees(user_id: int) -> set[int]:
    """The accounts ``user_id`` follows (accepted), whose tweets their timeline shows."""
    close_old_connections()
    return set(Follow.objects.accepted().filter(follower_id=user_id).values_list("followee_id", flat=True))


@dataclass
class Rendered:
    """A tweet as each stream shows it: ``/v1``'s tweet object and Mastodon's Status (by base URL), as JSON."""

    tweet_id: int
    v1: bytes
    statuses: dict[str, bytes]


def render(tweet_id: int, bases: frozenset[str]) -> Rendered | None:
    """The tweet for the streams, or None when it is no longer to be shown (deleted
    since, its author suspended): read through the tweet cache, as a page is."""
    close_old_connections()
    entries = tweets_hydrate(tweet_ids=[tweet_id])
    if not entries:
        return None
    entry = entries[0]
    statuses = {}
    if bases:
        authors, mentioned = mastodon_selectors.users_of(entries)
        author = authors.get(entry.author.user_id)
        if author is None:
            return None
        statuses = {base: orjson.dumps(mastodon_entities.status(entry, author=author, base=base,
                                                                mentioned=mentioned)) for base in bases}
    return Rendered(tweet_id=tweet_id, v1=orjson.dumps(entry.to_public()), statuses=statuses)


PAGE = 100


def resume(user_id: int, after: int, most: int) -> tuple[list[Rendered], bool]:
    """The tweets that entered ``user_id``'s timeline after the tweet ``after``, oldest
    first, at most ``most`` of them: pull-to-refresh's read (``since``), page after
    page. The flag says more were left (the reader should read the timeline again)."""
    close_old_connections()
    found: list[Rendered] = []
    since = after
    while len(found) < most:
        page = timeline_page_for_user(user_id=user_id, limit=min(PAGE, most - len(found)), since=since)
        if not page.tweets:
            return found, False
        for entry in reversed(page.tweets):
            found.append(Rendered(tweet_id=entry.tweet_id, v1=orjson.dumps(entry.to_public()), statuses={}))
        since = found[-1].tweet_id
    more = bool(timeline_page_for_user(user_id=user_id, limit=1, since=since).tweets)
    return found, more
