"""Abuse limits: DRF throttling by scope, counted in Redis, and the ``X-RateLimit-*`` headers.

A view names its scope (``throttle_scope = "tweet_create"``); ``RedisScopeThrottle``
(the default throttle class of every view) looks the scope up in ``SCOPES``: the
setting that holds its rate, what it counts by (the user, the client's IP, the
username a login names, the OAuth client a request authenticates as) and whether
it fails open or closed. A view without a scope is not limited and costs nothing.
A view with a second limit adds a throttle class fixed to its scope
(``OAuthClientThrottle``).

Each limit is a fixed-window counter per key, ``<REDIS_KEY_PREFIX>rl:<scope>:<who>``,
that expires with its window. One Lua call per request reads every counter the
request is subject to and, only if none is at its limit, increments them all,
so the check is atomic across gunicorn workers and hosts, costs one round trip,
and a refused request counts against nothing (a client hammering a closed window
does not push it further). Rates are read from the settings at each request.

Redis unreachable: the user-keyed scopes (posting, follows, timeline reads) fail
open, answered without a limit and without headers, since refusing every post
and read for a Redis blip would be the bigger harm and the user is authenticated
anyway; the anonymous ones (logins, registrations, OAuth client checks, app
registrations) fail closed with 503 and ``Retry-After``: without the counter, a
password-guessing, client-secret-hashing or sign-up flood would meet no limit at all.

A login is counted by the username it names as ``core.usernames.canonical``
spells it, the spelling the login looks up; a username (an OAuth client id)
given otherwise than as exactly one string is a 400 before anything is counted
(``NotOneValue``), since what the view would read from it is not what the limit
could count.
"""
import base64
import hashlib
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote_plus

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from rest_framework import exceptions, status
from rest_framework.throttling import BaseThrottle

from . import redis as core_redis
from . import usernames
from .metrics import rate_limit_refused
from .parsers import UNSTORABLE_MESSAGE, text_is_clean
from .rates import Decision, Rate, parse_rate
from .request_notes import CountedAhead, notes_of

logger = logging.getLogger(__name__)

BY_USER, BY_IP, BY_USERNAME, BY_CLIENT = "user", "ip", "username", "client"


@dataclass(frozen=True)
class Scope:
    setting: str  # the settings name holding the rate (``RATE_LIMIT_TWEETS``)
    by: tuple[str, ...]  # what is counted: each is a limit of its own, with the same rate
    fail_closed: bool = False  # refuse (503) rather than allow when Redis cannot be asked


SCOPES = {
    "tweet_create": Scope("RATE_LIMIT_TWEETS", (BY_USER,)),
    "follow": Scope("RATE_LIMIT_FOLLOWS", (BY_USER,)),
    "timeline": Scope("RATE_LIMIT_TIMELINE", (BY_USER,)),
    "login": Scope("RATE_LIMIT_LOGIN", (BY_IP, BY_USERNAME), fail_closed=True),
    "register": Scope("RATE_LIMIT_REGISTER", (BY_IP,), fail_closed=True),
    "oauth_client": Scope("RATE_LIMIT_OAUTH_CLIENT", (BY_IP,), fail_closed=True),
    # Apart from the address's, with its own (larger) rate: a client id is public, and a
    # web app's users all share one, so a small budget would let anyone lock them out.
    "oauth_app": Scope("RATE_LIMIT_OAUTH_APP", (BY_CLIENT,), fail_closed=True),
    "app_register": Scope("RATE_LIMIT_APP_REGISTER", (BY_IP,), fail_closed=True),
    "media": Scope("RATE_LIMIT_MEDIA", (BY_USER,)),
    "profile": Scope("RATE_LIMIT_PROFILE", (BY_USER,)),
}

# KEYS: one counter per limit; ARGV: limit_1, window_ms_1, limit_2, window_ms_2, ...
# Refused when any counter has reached its limit, and then nothing is counted;
# otherwise every counter goes up by one, a missing one starting its window.
# Returns {allowed (1|0), count_1, ttl_ms_1, count_2, ttl_ms_2, ...}, the counts
# after this request. (Redis 7 freezes time during a script: nothing expires
# between the reads and the writes.)
_HIT = """
local out = {1}
for i, key in ipairs(KEYS) do
  local ttl = redis.call('PTTL', key)
  local count = 0
  if ttl > 0 then count = tonumber(redis.call('GET', key)) or 0 end
  if count >= tonumber(ARGV[2 * i - 1]) then out[1] = 0 end
  out[2 * i], out[2 * i + 1] = count, ttl
end
if out[1] == 1 then
  for i, key in ipairs(KEYS) do
    if out[2 * i + 1] > 0 then
      redis.call('INCR', key)
    else
      local window = tonumber(ARGV[2 * i])
      redis.call('SET', key, 1, 'PX', window)
      out[2 * i + 1] = window
    end
    out[2 * i] = out[2 * i] + 1
  end
end
return out
"""


class RateLimiterUnavailable(exceptions.APIException):
    """Redis could not be asked, for a scope that fails closed (login, registration)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "This is temporarily unavailable (its rate limit cannot be checked); try again shortly."
    default_code = "rate_limiter_unavailable"
    wait = 5  # DRF's handler sends it as Retry-After


_script = core_redis.Script(_HIT)


def _redis():
    return core_redis.connection()


def _hit(keys: list[str], rate: Rate) -> list[int]:
    client = _redis()
    groups = core_redis.slot_groups(keys)
    if len(groups) <= 1:
        return _script(keys=keys, args=[rate.limit, rate.seconds * 1000] * len(keys), client=client)
    return _hit_across_slots(client, groups, rate)


def _hit_across_slots(client, groups: list[list[str]], rate: Rate) -> list[int]:
    """``_HIT`` for counters in several hash slots (a login on a Redis Cluster): one
    script cannot take them all, so the counters are first read (one pipelined round
    trip) and, only if none is at its limit, the script runs once per slot (a second
    one). A refused request still counts against nothing; two requests racing for
    the last unit of one limit may each count one against the other limit."""
    keys = [key for group in groups for key in group]
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.pttl(key)
        pipe.get(key)
    replies = pipe.execute()
    out = [1]
    for i in range(len(keys)):
        ttl, count = int(replies[2 * i]), replies[2 * i + 1]
        count = int(count or 0) if ttl > 0 else 0
        if count >= rate.limit:
            out[0] = 0
        out += [count, ttl]
    if not out[0]:
        return out
    results = _script.per_slot(keys=keys, args=[rate.limit, rate.seconds * 1000] * max(map(len, groups)),
                               client=client)
    out = [1]
    for result in results:
        out[0] &= int(result[0])
        out += result[1:]
    return out


def hit(*, scope: str, who: list[str], rate: Rate) -> Decision:
    """Count one request against ``scope``'s limit for each of ``who`` (one round trip).

    The decision reported is the binding limit's: the refusing one with the
    longest wait, or else the one with the fewest requests left.
    """
    return _decision(_hit([_key(scope, w) for w in who], rate), rate)


def _key(scope: str, who: str) -> str:
    return f"{settings.REDIS_KEY_PREFIX}rl:{scope}:{who}"


def _decision(raw: list[int], rate: Rate) -> Decision:
    now = time.time()
    limits = [(int(count), int(ttl_ms)) for count, ttl_ms in zip(raw[1::2], raw[2::2], strict=True)]
    if raw[0]:
        count, ttl_ms = min(limits, key=lambda c: (rate.limit - c[0], -c[1]))
        remaining, retry_after = max(rate.limit - count, 0), 0
    else:
        count, ttl_ms = max((c for c in limits if c[0] >= rate.limit), key=lambda c: c[1])
        remaining, retry_after = 0, max(1, math.ceil(ttl_ms / 1000))
    return Decision(allowed=bool(raw[0]), limit=rate.limit, remaining=remaining,
                    reset=math.ceil(now + ttl_ms / 1000), retry_after=retry_after)


def rate_for(scope: str) -> Rate:
    """The scope's rate, read from the settings now (so a test's ``settings`` fixture applies)."""
    try:
        config = SCOPES[scope]
    except KeyError:
        raise ImproperlyConfigured(f"Unknown throttle scope {scope!r}; known: {', '.join(SCOPES)}.") from None
    try:
        return parse_rate(getattr(settings, config.setting))
    except ValueError as exc:
        raise ImproperlyConfigured(f"{config.setting}: {exc}") from None


def client_ip(request) -> str:
    """The client's address: ``REMOTE_ADDR``, or with ``RATE_LIMIT_TRUSTED_PROXIES = n``
    (n proxies of ours in front, each appending the address it received the request
    from) the n-th ``X-Forwarded-For`` entry from the right, the one our outermost
    proxy wrote. Entries further left are the client's own word and never used.
    IPv6 addresses count by their /64, the block one subscriber usually holds."""
    address = request.META.get("REMOTE_ADDR", "")
    proxies = settings.RATE_LIMIT_TRUSTED_PROXIES
    if proxies > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= proxies:
            address = hops[-proxies]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False).network_address)
    return str(ip)


def _user_who(user_id: int) -> str:
    return f"u:{{{user_id}}}"  # the user's hash tag, as the user's other keys


def who_for(scope: str, *, ip: str, user_id: int | None = None, username: str | None = None,
            client_ids: tuple[str, ...] = ()) -> list[str]:
    """What ``scope``'s limit counts a request by, whichever door it came through (a DRF
    view, a sign-in form): the user, the client's address ``ip``, the ``username`` it
    names, as ``core.usernames.canonical`` spells it (the name login looks up), hashed
    (no name is kept in Redis as typed), and the OAuth ``client_ids`` it authenticates
    as, hashed too. A request naming no username (no client) is counted by the rest; a user
    scope reached without a user counts by address."""
    who = []
    for by in SCOPES[scope].by:
        if by == BY_USERNAME:
            if username is not None:
                who.append(f"name:{_digest(usernames.canonical(username))}")
        elif by == BY_CLIENT:
            who += [f"client:{_digest(client_id)}" for client_id in dict.fromkeys(client_ids)]
        elif by == BY_USER and user_id is not None:
            who.append(_user_who(user_id))
        else:
            who.append(f"ip:{ip}")
    return who


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode(errors="surrogatepass")).hexdigest()[:32]


class NotOneValue(exceptions.ValidationError):
    """A field the limit counts by was given otherwise than as exactly one string (a
    number, a list, null, a file, twice): refused (400) before anything is counted or
    checked, since the limit could not count it as the login or the client check reads it."""

    def __init__(self, field: str):
        super().__init__({field: [f"{field} must be given once, as a string."]}, code="not_one_value")
        self.field = field


def _values(data, field: str) -> list:
    """Every value ``field`` has in a request's body: a form's repeated fields and its
    files (DRF's ``request.data`` holds both), or a JSON object's one value."""
    if hasattr(data, "getlist"):
        return data.getlist(field)
    if isinstance(data, dict) and field in data:
        return [data[field]]
    return []


def login_username(data) -> str | None:
    """The username a login body names (None when it names none);
    ``NotOneValue`` unless it is exactly one string."""
    try:
        return usernames.one_username(_values(data, "username"))
    except usernames.NotOneUsername:
        raise NotOneValue("username") from None


def oauth_client_ids(request) -> tuple[str, ...]:
    """The client ids an OAuth request authenticates as, each of which
    django-oauth-toolkit may check a client secret for: HTTP Basic's, then the body's
    ``client_id`` (tried when Basic fails). ``NotOneValue`` for a body ``client_id``
    that is not exactly one string."""
    ids = []
    # Read as django-oauth-toolkit reads it (OAuth2Validator._authenticate_basic_auth):
    # whatever it would check a secret for is counted.
    kind, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if kind == "Basic":
        try:
            decoded = base64.b64decode(credentials).decode(settings.DEFAULT_CHARSET or "utf-8")
        except ValueError:  # binascii.Error, UnicodeDecodeError, and a header not ASCII (which
            # django-oauth-toolkit does not catch: it was a 500)
            raise exceptions.ParseError("The Authorization header's Basic credentials are not base64 of "
                                        "client_id:client_secret.") from None
        if ":" in decoded:
            client_id = unquote_plus(decoded.split(":", 1)[0])
            if not text_is_clean(client_id):
                raise exceptions.ParseError(UNSTORABLE_MESSAGE)
            ids.append(client_id)
    values = _values(request.data, "client_id")
    if values:
        if len(values) > 1 or not isinstance(values[0], str):
            raise NotOneValue("client_id")
        ids.append(values[0])
    return tuple(ids)


def _who(scope: str, request) -> list[str]:
    by = SCOPES[scope].by
    # Read from the body before the view does, so a flood stops here, before the
    # password hasher; a malformed body is the view's 400 as ever. A username (a
    # client id) that is not one string is refused here: the view would read it
    # otherwise than the limit can count it (a number as its digits, the last of
    # two fields, a file skipped).
    username = login_username(request.data) if BY_USERNAME in by else None
    client_ids = oauth_client_ids(request) if BY_CLIENT in by else ()
    user = request.user
    user_id = user.id if getattr(user, "is_authenticated", False) else None
    return who_for(scope, ip=client_ip(request), user_id=user_id, username=username, client_ids=client_ids)


def counted_by_user(scope: str) -> bool:
    """Whether ``scope``'s limit is counted by the user alone (and so may be ``prefetch``ed)."""
    return SCOPES[scope].by == (BY_USER,)


def prefetch(round_trip: core_redis.RoundTrip, *, request, scope: str, user_id: int) -> None:
    """Count this request against ``user_id``'s limit of ``scope`` (a scope counted by
    user only) within ``round_trip``, which the caller makes before the throttles run:
    the throttle then takes the decision made there instead of asking Redis itself.
    Should the trip fail or the script be unknown to the server, it asks as ever."""
    if not counted_by_user(scope):
        raise ImproperlyConfigured(f"Only a scope counted by user alone can be prefetched, not {scope!r}.")
    rate = rate_for(scope)
    keys = [_key(scope, _user_who(user_id))]

    def parse(replies: list) -> Decision | None:
        return None if isinstance(replies[0], Exception) else _decision(replies[0], rate)

    reply = round_trip.add(lambda pipe: _script.queue(pipe, keys=keys, args=[rate.limit, rate.seconds * 1000]),
                           parse)
    notes_of(request).counted_ahead = CountedAhead(scope=scope, reply=reply)


class RedisScopeThrottle(BaseThrottle):
    """The limits of the view's ``throttle_scope`` (none without one), kept in Redis;
    a subclass that names its own ``scope`` applies that one instead."""

    scope: str | None = None

    def allow_request(self, request, view) -> bool:
        self.decision = None
        scope = self.scope or getattr(view, "throttle_scope", None)
        if not scope:
            return True
        rate = rate_for(scope)
        config = SCOPES[scope]
        notes = notes_of(request)
        ahead = notes.counted_ahead
        try:
            if ahead is not None and ahead.scope == scope and ahead.reply.value is not None:
                self.decision = ahead.reply.value
            else:
                who = _who(scope, request)
                if not who:  # nothing this scope counts by (an OAuth request naming no client)
                    return True
                self.decision = hit(scope=scope, who=who, rate=rate)
        except core_redis.FAILURES as exc:
            if config.fail_closed:
                logger.error("rate limit %s unavailable, refusing: %s", scope, exc)
                raise RateLimiterUnavailable() from exc
            logger.warning("rate limit %s unavailable, not applied: %s", scope, exc)
            return True
        # For the headers, allowed or refused: the binding limit's, when a view has two.
        if notes.decision is None or not self.decision.allowed or self.decision.remaining < notes.decision.remaining:
            notes.decision = self.decision
        if not self.decision.allowed:
            notes.refused_scope = scope
        return self.decision.allowed

    def wait(self) -> int | None:
        return self.decision.retry_after if self.decision is not None else None


class OAuthClientThrottle(RedisScopeThrottle):
    """``oauth_client``: OAuth requests that authenticate a client (``/oauth/token``,
    ``/oauth/revoke``), per IP, before django-oauth-toolkit checks the client secret
    offered (a salted hash, or PBKDF2 for an app registered before ``mastoapi.hashers``)."""

    scope = "oauth_client"


class OAuthAppThrottle(RedisScopeThrottle):
    """``oauth_app``: the same requests per client id (from HTTP Basic and the body),
    with a rate of its own, also before the secret is checked."""

    scope = "oauth_app"


def check_in_turn(view, request) -> None:
    """DRF's ``check_throttles`` for a view with several throttles, stopping at the first
    that refuses: a request refused by one limit counts against none after it."""
    for throttle in view.get_throttles():
        if not throttle.allow_request(request, view):
            view.throttled(request, throttle.wait())


def sign_in_form_refusal(request, refuse: Callable[[str, int], HttpResponse]) -> HttpResponse | None:
    """Count a sign-in form's POST (the Mastodon sign-in page, the admin's) against the
    login limit, by the same keys as the API's logins, before the form checks the
    password: None when it may go on, else ``refuse(message, status)``'s page: 400 for a
    username not given once, 429 (with ``Retry-After``) over the limit, 503 when Redis
    cannot be asked (the login limit fails closed)."""
    return _form_refusal(request, refuse, scope="login", what="sign-in attempts")


def sign_up_form_refusal(request, refuse: Callable[[str, int], HttpResponse]) -> HttpResponse | None:
    """Count a sign-up form's POST against the registration limit (per address, as
    ``POST /v1/auth/register``), before the form is checked; as ``sign_in_form_refusal``."""
    return _form_refusal(request, refuse, scope="register", what="sign-ups from your address")


def _form_refusal(request, refuse: Callable[[str, int], HttpResponse], *, scope: str,
                  what: str) -> HttpResponse | None:
    try:
        username = usernames.one_username(request.POST.getlist("username"))
    except usernames.NotOneUsername as exc:
        return refuse(str(exc), status.HTTP_400_BAD_REQUEST)
    try:
        decision = hit(scope=scope, who=who_for(scope, ip=client_ip(request), username=username),
                       rate=rate_for(scope))
    except core_redis.FAILURES as exc:
        logger.error("rate limit %s unavailable, refusing: %s", scope, exc)
        response = refuse(str(RateLimiterUnavailable.default_detail), status.HTTP_503_SERVICE_UNAVAILABLE)
        response["Retry-After"] = str(RateLimiterUnavailable.wait)
        return response
    notes_of(request).decision = decision
    if decision.allowed:
        return None
    rate_limit_refused(scope=scope)
    response = refuse(f"Too many {what}; try again in {decision.retry_after} seconds.",
                      status.HTTP_429_TOO_MANY_REQUESTS)
    response["Retry-After"] = str(decision.retry_after)
    return response


class RateLimitHeadersMiddleware:
    """Put ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` on every response whose
    request a limit counted (a 429 too, beside DRF's ``Retry-After``); Redis is not asked again.
    A header the view set itself (the Mastodon API's, from ``RequestNotes.decision``) is kept."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        decision = notes_of(request).decision
        if decision is not None:
            for name, value in decision.headers().items():
                response.setdefault(name, value)
        return response
