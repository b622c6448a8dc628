"""OAuth access tokens as the Mastodon API checks them: django-oauth-toolkit's lookup, cached in Redis.

A token is looked up by django-oauth-toolkit itself (the configured validator's
``validate_bearer_token``: by checksum, expiry and app included; given the token
from the header alone, so the request's body is never read to authenticate it),
and what the API needs of it (the user's id, the scopes, the app's id, the expiry)
is kept at ``<REDIS_KEY_PREFIX>tok:<sha256 of the token>`` (its checksum, as
stored in PostgreSQL) for ``TTL_SECONDS`` at most, so a token in use costs no query.

A token revoked or deleted (``/oauth/revoke``, a refresh that replaces it, its
user deleted, the admin) is marked revoked there once the deletion commits
(``forget``, from the ``post_delete`` signal): a fill is ``SET NX``, so a lookup
that read the row before the deletion cannot bring it back. A row that changes
(``pre_save``) has its entry overwritten once the change commits with what the
saved row grants (``remember``, a plain ``SET``), so a lookup that read the row
before the change cannot fill the old scopes or expiry back either; if the value
itself changes (a refresh reusing the row), the old value's entry is marked
revoked and the new one's written. Whether the user is still active is not
cached here: the caller checks it (the author cache, or the user's row).

A view that makes a first round trip for its reader (the home timeline) need not
send the token's GET on its own before it: a process recalls what each token was
last found to grant (``recall``), sends the GET within that trip (``prefetch``)
and believes the recalled grant only if the entry still holds the very same bytes
(``confirm``); anything else is answered as ``lookup`` answers it. Nothing is
believed that the cache does not hold at that moment: a revocation is seen by the
next request, as without the recall. What a refused request's trip did (its rate
limit counted, the reader's timeline kept warm) is done for the user the token
last stood for, once per process at most.
"""
import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass

import orjson
from django.conf import settings
from oauth2_provider.models import AccessToken
from oauth2_provider.settings import oauth2_settings
from oauthlib.common import Request as OAuthRequest

from core import redis as core_redis

logger = logging.getLogger(__name__)

TTL_SECONDS = 600  # bounds how long a revocation Redis could not record is still honoured
_REVOKED = b"-"
_UNREACHABLE = core_redis.UNREACHABLE


@dataclass(frozen=True)
class Token:
    """What an access token grants, as the API needs it."""

    user_id: int | None  # None for a client-credentials token (an app, no user)
    scopes: frozenset[str]
    application_id: int | None
    expires: float  # unix time

    def cache_seconds(self) -> int:
        """How long the cache may keep it: ``TTL_SECONDS`` at most, and never past its expiry."""
        return min(TTL_SECONDS, int(self.expires - time.time()))

    def pack(self) -> bytes:
        return orjson.dumps({"user": self.user_id, "scopes": " ".join(sorted(self.scopes)),
                             "app": self.application_id, "expires": self.expires})

    @classmethod
    def unpack(cls, raw: bytes) -> "Token":
        data = orjson.loads(raw)
        return cls(user_id=data["user"], scopes=frozenset(data["scopes"].split()), application_id=data["app"],
                   expires=data["expires"])


def granted(access_token: AccessToken) -> Token:
    """What a stored access token grants."""
    return Token(user_id=access_token.user_id, scopes=frozenset(access_token.scope.split()),
                 application_id=access_token.application_id, expires=access_token.expires.timestamp())


def _key(checksum: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}tok:{checksum}"


def lookup(request, raw_token: str) -> tuple[Token | None, object | None]:
    """The token ``raw_token`` (sent by ``request``) grants, if it is valid: (the token
    or None, the user row when django-oauth-toolkit was asked and read it, else None).
    Cached: one GET and no query; else django-oauth-toolkit's lookup, then cached."""
    key = _key(checksum_of(raw_token))
    try:
        cached = core_redis.connection().get(key)
        reachable = True
    except _UNREACHABLE:
        logger.warning("token cache unreachable: asking PostgreSQL")
        cached, reachable = None, False
    return _answer(request, raw_token, key, cached, reachable=reachable)


def _answer(request, raw_token: str, key: str, cached: bytes | None, *, reachable: bool
            ) -> tuple[Token | None, object | None]:
    """``lookup``'s answer, given what the cache held for the token (``cached``)."""
    if cached == _REVOKED:
        _recalled.pop(key, None)
        return None, None
    if cached is not None:
        token = Token.unpack(cached)
        if token.expires <= time.time():
            return None, None
        _recall_note(key, cached, token)
        return token, None
    oauth_request = OAuthRequest(request.build_absolute_uri(), http_method=request.method)
    if not oauth2_settings.OAUTH2_VALIDATOR_CLASS().validate_bearer_token(raw_token, [], oauth_request):
        _recalled.pop(key, None)
        return None, None
    # A valid token: the validator has put the row on the request.
    access_token: AccessToken = oauth_request.access_token
    user = access_token.user
    token = granted(access_token)
    ttl = token.cache_seconds()
    if reachable and ttl > 0:
        try:
            core_redis.connection().set(key, token.pack(), ex=ttl, nx=True)
        except _UNREACHABLE:
            logger.warning("token cache unreachable: a token read but not cached")
    return token, user


def checksum_of(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


# --- A token recalled, checked in the request's first round trip ------------------------
#
# What each token was last found to grant in the cache, by key, in this process: the
# reader's id a view's first round trip needs (``recall``), so that the token's GET can
# go in that same trip instead of one of its own before it (``prefetch``). The token is
# then believed only if the cache still holds exactly those bytes (``confirm``): a
# revocation or a change is seen by the very request after it, as with ``lookup``.

_RECALLED_MAX = 20_000  # tokens a process recalls (each about 200 bytes); the oldest is forgotten first
_recalled: dict[str, tuple[bytes, Token]] = {}  # oldest noted first


def _recall_note(key: str, cached: bytes, token: Token) -> None:
    # Each step is one dict operation: threads of one process may note at once.
    _recalled.pop(key, None)
    _recalled[key] = (cached, token)
    if len(_recalled) > _RECALLED_MAX:
        with contextlib.suppress(KeyError, RuntimeError, StopIteration):
            del _recalled[next(iter(_recalled))]


@dataclass(frozen=True)
class Recalled:
    """A token as this process last found it in the cache (``token``), to be confirmed."""

    raw_token: str
    key: str
    cached: bytes
    token: Token


def recall(raw_token: str) -> Recalled | None:
    """What this process last found ``raw_token`` to grant, if it has not expired since;
    to be confirmed by the cache in the same request (``prefetch``, ``confirm``)."""
    key = _key(checksum_of(raw_token))
    found = _recalled.get(key)
    if found is None or found[1].expires <= time.time():
        return None
    return Recalled(raw_token=raw_token, key=key, cached=found[0], token=found[1])


def prefetch(round_trip: core_redis.RoundTrip, recalled: Recalled) -> core_redis.Reply[bytes | Exception | None]:
    """Ask for the recalled token's cache entry within a round trip made by the caller."""
    return round_trip.add(lambda pipe: pipe.get(recalled.key), lambda replies: replies[0])


def confirm(request, recalled: Recalled, reply: core_redis.Reply[bytes | Exception | None]
            ) -> tuple[Token | None, object | None]:
    """``lookup``'s answer for the recalled token, from its entry as ``reply`` read it: the
    recalled grant if the cache holds the very same bytes; else as ``lookup`` answers from
    what it holds now (revoked: None; changed: the new grant; gone: django-oauth-toolkit asked).
    A trip that failed: ``lookup`` itself."""
    if not reply.made or isinstance(reply.value, Exception):
        return lookup(request, recalled.raw_token)
    if reply.value == recalled.cached:
        return recalled.token, None
    return _answer(request, recalled.raw_token, recalled.key, reply.value, reachable=True)


def forget(checksum: str) -> None:
    """Mark the token of ``checksum`` revoked, that no lookup begun before the deletion
    fills it again (call after commit)."""
    core_redis.connection().set(_key(checksum), _REVOKED, ex=TTL_SECONDS)


def remember(checksum: str, token: Token) -> None:
    """Overwrite the cached token of ``checksum`` with what its row grants now, whatever
    a lookup that read it earlier filled (call after commit of the change). One that
    has expired is marked revoked instead: a lookup would refuse it anyway."""
    ttl = token.cache_seconds()
    if ttl > 0:
        core_redis.connection().set(_key(checksum), token.pack(), ex=ttl)
    else:
        forget(checksum)
