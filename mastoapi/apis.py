"""The Mastodon client API: thin views over the product's services and selectors.

Each view declares the methods it serves (``http_method_names = serves(...)``),
reads Mastodon's parameters with a serializer (``serializers.Params``, which
takes forms and JSON alike), calls the same service or selector a ``/v1`` view
calls (posting is ``tweets.services.tweet_post``, the home timeline is
``timelines.selectors.timeline_page_for_user``, follows are
``social.services``), and answers Mastodon's entities (``entities``). Errors
have Mastodon's shape, ``{"error": "..."}`` (OAuth's add ``error_description``);
invalid input is a 422 as Mastodon's validation failures are. Rate limits are
the ``/v1`` scopes, with ``X-RateLimit-Reset`` as an ISO 8601 time, as Mastodon
sends it.
"""
from collections.abc import Sequence
from typing import cast
from urllib.parse import urlencode

import orjson
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from core import throttling
from core.exceptions import ApplicationError, NotFound, as_drf_validation_error
from core.exceptions import exception_handler as core_exception_handler
from core.fields import IdField, StrictCharField, idempotency_key
from core.parsers import SafeFormParser, SafeJSONParser, SafeMultiPartParser
from core.request_notes import ReadsFirst, notes_of
from media import selectors as media_selectors
from media import services as media_services
from media import uploads
from media.models import DESCRIPTION_MAX_LENGTH
from social import selectors as social_selectors
from social import services as social_services
from social.models import DISPLAY_NAME_MAX_LENGTH, User
from timelines.apis import HomeTimelineFirstReads
from timelines.selectors import timeline_page_for_user
from tweets import services as tweet_services
from tweets.objects import TweetEntry
from tweets.selectors import tweet_shown, tweet_visible_to

from . import entities, oauth, selectors, services, usage
from .authentication import HasScope, MastodonAuthentication, MastodonReaderAuthentication
from .serializers import (
    ACCOUNTS_LIMIT,
    ACCOUNTS_LIMIT_MAX,
    CANT_BE_BLANK,
    RELATIONSHIPS_MAX,
    STATUSES_LIMIT,
    STATUSES_LIMIT_MAX,
    OneOrMany,
    PageParams,
    Params,
    Words,
)


class BadRequest(ApplicationError):
    status_code = 422


def _message(data) -> str:
    if isinstance(data, dict):
        if "detail" in data:  # DRF's and simplejwt's errors
            return _message(data["detail"])
        return "; ".join(f"{key}: {_message(value)}" for key, value in data.items())
    if isinstance(data, list):
        return " ".join(_message(item) for item in data)
    return str(data)


def mastodon_exception_handler(exc, context):
    """The product's exception handler, its body reshaped as Mastodon's ``{"error": ...}``;
    invalid input (DRF's or a service's ``ValidationError``) is a 422, "Validation failed"."""
    if isinstance(exc, DjangoValidationError):
        exc = as_drf_validation_error(exc)
    response = core_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.status_code = 422
        response.data = {"error": f"Validation failed: {_message(response.data)}"}
    elif isinstance(exc, exceptions.NotFound | NotFound):
        response.data = {"error": "Record not found"}
    else:
        response.data = {"error": _message(response.data)}
    return response


def serves(*methods: str) -> list[str]:
    """``http_method_names`` for a view that serves ``methods`` (HEAD with GET, and OPTIONS)."""
    return [*methods, *(["head"] if "get" in methods else []), "options"]


class MastoApi(APIView):
    # Not in /v1's OpenAPI schema: Mastodon's own documentation describes this API.
    schema = None
    authentication_classes = [MastodonAuthentication]
    permission_classes = [HasScope]
    parser_classes = [SafeJSONParser, SafeFormParser, SafeMultiPartParser]
    required_scopes: dict[str, str] = {}
    # Each view names the methods it serves (``serves``); any other is a 405. A view
    # reuses another's code through a function or a mixin, never by inheriting it,
    # so no route serves a method by accident.
    http_method_names: list[str] = []

    def get_exception_handler(self):
        return mastodon_exception_handler

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        decision = notes_of(request).decision
        if decision is not None:
            response["X-RateLimit-Limit"] = str(decision.limit)
            response["X-RateLimit-Remaining"] = str(decision.remaining)
            response["X-RateLimit-Reset"] = entities.mastodon_time(decision.reset)
        return response

    @property
    def base(self) -> str:
        return self.request.build_absolute_uri("/").rstrip("/")

    def statuses(self, tweets: list[TweetEntry]) -> list[dict]:
        authors, mentioned = selectors.users_of(tweets)
        return entities.statuses(tweets, authors=authors, base=self.base, mentioned=mentioned)

    def statuses_json(self, tweets: list[TweetEntry]) -> list[orjson.Fragment]:
        """``statuses``, encoded (``entities.statuses_json``): for a page that only shows them."""
        authors, mentioned = selectors.users_of(tweets)
        return entities.statuses_json(tweets, authors=authors, base=self.base, mentioned=mentioned)

    def account(self, user, **kwargs) -> dict:
        return entities.account(user, base=self.base, **kwargs)

    def relationships(self, user_ids: list[int]) -> list[dict]:
        viewer = cast(User, self.request.user)  # HasScope admitted a token's user
        outgoing, incoming = social_selectors.follow_states(viewer_id=viewer.id, user_ids=user_ids)
        return [entities.relationship(i, outgoing=outgoing.get(i), incoming=incoming.get(i)) for i in user_ids]

    def paged(self, items: list, *, limit: int, next_max_id=None, prev_min_id=None) -> Response:
        """``items`` with the ``Link`` header Mastodon clients page by: a ``limit`` the query
        named is carried on as the page used it (``limit``, clamped), not as it was asked."""
        url = self.request.build_absolute_uri(self.request.path)
        keep = {"limit": limit} if "limit" in self.request.query_params else {}
        links = []
        if next_max_id is not None:
            links.append(f'<{url}?{urlencode({**keep, "max_id": next_max_id})}>; rel="next"')
        if prev_min_id is not None:
            links.append(f'<{url}?{urlencode({**keep, "min_id": prev_min_id})}>; rel="prev"')
        return Response(items, headers={"Link": ", ".join(links)} if links else None)


# --- Apps, OAuth and the instance -------------------------------------------------


class AppCreateApi(MastoApi):
    http_method_names = serves("post")
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_scope = "app_register"  # per client IP, apart from account registrations

    class Input(Params):
        client_name = StrictCharField(max_length=255, error_messages=CANT_BE_BLANK)
        redirect_uris = Words(allow_empty=False, error_messages={**CANT_BE_BLANK, "empty": "can't be blank"})
        scopes = Words(required=False)
        website = StrictCharField(max_length=500, required=False, allow_blank=True, allow_null=True)

    def post(self, request):
        params = self.Input.of(request.data)
        scopes, website = params.get("scopes") or ["read"], params.get("website") or ""
        app, secret = services.app_register(name=params["client_name"], redirect_uris=params["redirect_uris"],
                                            scopes=scopes, website=website)
        return Response(entities.application(app, scopes=scopes, website=website, client_secret=secret))


class AppVerifyApi(MastoApi):
    http_method_names = serves("get")
    app_token_allowed = True

    def get(self, request):
        app = request.auth.application
        if app is None:
            raise NotFound("This token was not issued to an app.")
        profile = app.mastodon
        return Response(entities.application(app, scopes=profile.scopes.split(), website=profile.website))


# RFC 6749's meaning of each OAuth error (section 5.2; RFC 7009 for revocation), sent as
# its ``error_description`` when oauthlib gives none, as Mastodon always sends one.
_OAUTH_ERRORS = {
    "invalid_request": "The request is missing a parameter, repeats one, or is otherwise malformed.",
    "invalid_client": "Client authentication failed: unknown client, no client authentication, "
                      "or an unsupported authentication method.",
    "invalid_grant": "The authorization grant or refresh token is invalid, expired or revoked, does not "
                     "match the redirection URI, or was issued to another client.",
    "unauthorized_client": "This client may not use this grant type.",
    "unsupported_grant_type": "The authorization server does not support this grant type.",
    "invalid_scope": "The requested scope is invalid, unknown, or malformed.",
    "unsupported_token_type": "The authorization server cannot revoke this type of token.",
}


def _oauth_error(body: dict) -> dict:
    """OAuth's error body (RFC 6749): ``error`` and always an ``error_description``."""
    error = str(body.get("error") or "invalid_request")
    description = body.get("error_description") or _OAUTH_ERRORS.get(error, "The request was refused.")
    return {"error": error, "error_description": str(description)}


def oauth_exception_handler(exc, context):
    """Mastodon's handler, with OAuth's body (RFC 6749) for what is refused before oauthlib
    sees the request: a body that does not parse (malformed JSON, say) or a username or
    client id not given as one string, read by the rate limit or the view, is a 400
    ``invalid_request``; a rate limit's refusal (429) or a limiter that cannot be asked
    (503) is ``temporarily_unavailable``, its ``Retry-After`` kept."""
    response = mastodon_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ParseError | exceptions.UnsupportedMediaType | throttling.NotOneValue):
        if isinstance(exc, throttling.NotOneValue):
            response.status_code = 400
            description = f"{exc.field} must be given once, as a string."
        else:
            description = str(exc.detail)
        response.data = _oauth_error({"error": "invalid_request", "error_description": description})
    elif isinstance(exc, exceptions.Throttled | throttling.RateLimiterUnavailable):
        response.data = _oauth_error({"error": "temporarily_unavailable", "error_description": str(exc.detail)})
    return response


class OAuthErrors:
    """For OAuth's endpoints: every refusal of the request's body is an OAuth error; the
    client check's limits (``oauth_client`` per IP, then ``oauth_app`` per client id,
    before the client secret is hashed) come first, and a request one refuses counts
    against no limit after it."""

    throttle_classes: Sequence[type[BaseThrottle]] = [throttling.OAuthClientThrottle, throttling.OAuthAppThrottle,
                                                      throttling.RedisScopeThrottle]

    def get_exception_handler(self):
        return oauth_exception_handler

    def check_throttles(self, request):
        throttling.check_in_turn(self, request)


class TokenApi(OAuthErrors, MastoApi):
    """OAuth's token endpoint: its body is django-oauth-toolkit's to read, and its errors
    are OAuth's (RFC 6749: ``{"error": "invalid_grant", "error_description": ...}``)."""

    http_method_names = serves("post")
    authentication_classes = []
    permission_classes = [AllowAny]
    # Per client IP and per username, before the password is checked; first, the client
    # check's own limit (``OAuthErrors``).
    throttle_scope = "login"

    def post(self, request):
        status, body = oauth.token_response(request)
        if status == 200:
            return Response(entities.token(body))
        return Response(_oauth_error(body), status=status)


class RevokeApi(OAuthErrors, MastoApi):
    http_method_names = serves("post")
    authentication_classes = []
    permission_classes = [AllowAny]

    def post(self, request):
        status, body = oauth.revocation_response(request)
        return Response(_oauth_error(body) if status != 200 else {}, status=status)


class InstanceApi(MastoApi):
    """The instance, as ``/api/v1/instance`` (``entities.instance_v1``) or ``/api/v2/instance``
    (``entities.instance_v2``): the route names the builder."""

    http_method_names = serves("get")
    authentication_classes = []
    permission_classes = [AllowAny]
    build = staticmethod(entities.instance_v2)

    def get(self, request):
        return Response(self.build(base=self.base, domain=settings.MASTODON_DOMAIN, usage=usage.usage()))


class PublicDocumentApi(MastoApi):
    """A public document that describes the server, not a user (CORS lets any origin read
    it): the route names its builder (``entities.oauth_metadata``, ``nodeinfo_links``)."""

    http_method_names = serves("get")
    authentication_classes = []
    permission_classes = [AllowAny]
    build = staticmethod(entities.oauth_metadata)

    def get(self, request):
        return Response(self.build(base=self.base))


class NodeInfoApi(MastoApi):
    """The NodeInfo 2.0 document (``entities.nodeinfo``), with the usage counts."""

    http_method_names = serves("get")
    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request):
        return Response(entities.nodeinfo(usage=usage.usage()))


# --- Accounts ---------------------------------------------------------------------


class VerifyCredentialsApi(MastoApi):
    http_method_names = serves("get")
    required_scopes = {"GET": "read:accounts"}

    def get(self, request):
        user = social_selectors.user_get(user_id=request.user.id)
        return Response(self.account(user, statuses_count=selectors.statuses_count(user_id=user.id), source=True))


class UpdateCredentialsApi(MastoApi):
    http_method_names = serves("patch")
    required_scopes = {"PATCH": "write:accounts"}
    throttle_scope = "profile"

    class Input(Params):
        display_name = StrictCharField(max_length=DISPLAY_NAME_MAX_LENGTH, required=False, allow_blank=True)
        locked = serializers.BooleanField(required=False)

    def patch(self, request):
        params = self.Input.of(request.data)
        user = social_services.user_update(user=request.user, display_name=params.get("display_name"),
                                           is_private=params.get("locked"))
        return Response(self.account(user, statuses_count=selectors.statuses_count(user_id=user.id), source=True))


class AccountApi(MastoApi):
    http_method_names = serves("get")
    required_scopes = {"GET": "read:accounts"}

    def get(self, request, account_id: int):
        user = social_selectors.user_get(user_id=account_id)
        return Response(self.account(user, statuses_count=selectors.statuses_count(user_id=user.id)))


class LookupApi(MastoApi):
    http_method_names = serves("get")
    required_scopes = {"GET": "read:accounts"}

    class Input(Params):
        acct = StrictCharField(required=False, allow_blank=True, default="")  # none: 404, as Mastodon

    def get(self, request):
        acct = self.Input.of(request.query_params)["acct"].removeprefix("@")
        name, _, domain = acct.partition("@")
        if not name or (domain and domain not in (settings.MASTODON_DOMAIN, request.get_host())):
            raise NotFound("No such account.")
        user = social_selectors.user_by_username(username=name)
        return Response(self.account(user, statuses_count=selectors.statuses_count(user_id=user.id)))


class FollowApi(MastoApi):
    http_method_names = serves("post")
    throttle_scope = "follow"
    required_scopes = {"POST": "write:follows"}

    def post(self, request, account_id: int):
        social_services.follow_create(follower=request.user, followee_id=account_id)
        return Response(self.relationships([account_id])[0])


class UnfollowApi(MastoApi):
    http_method_names = serves("post")
    throttle_scope = "follow"
    required_scopes = {"POST": "write:follows"}

    def post(self, request, account_id: int):
        social_selectors.user_get(user_id=account_id)
        social_services.follow_delete(follower=request.user, followee_id=account_id)
        return Response(self.relationships([account_id])[0])


class RemoveFromFollowersApi(MastoApi):
    http_method_names = serves("post")
    throttle_scope = "follow"
    required_scopes = {"POST": "write:follows"}

    def post(self, request, account_id: int):
        social_selectors.user_get(user_id=account_id)
        social_services.follower_remove(followee=request.user, follower_id=account_id)
        return Response(self.relationships([account_id])[0])


class RelationshipsApi(MastoApi):
    http_method_names = serves("get")
    required_scopes = {"GET": "read:follows"}

    class Input(Params):
        id = OneOrMany(child=IdField(), required=False, default=list)

    def get(self, request):
        ids = self.Input.of(request.query_params)["id"]
        return Response(self.relationships(list(dict.fromkeys(ids))[:RELATIONSHIPS_MAX]))


class AccountListApi(MastoApi):
    """Followers (``page=followers_page``, the default) or followees (``following_page``)
    in the order of ``/v1``'s lists: by account id. ``max_id`` is that list's cursor (the
    last account id seen), which is what the ``Link`` header's ``rel="next"`` carries."""

    http_method_names = serves("get")
    required_scopes = {"GET": "read:accounts"}
    page = staticmethod(social_selectors.followers_page)

    def get(self, request, account_id: int):
        params = PageParams.page(request.query_params, default=ACCOUNTS_LIMIT, maximum=ACCOUNTS_LIMIT_MAX)
        users, next_cursor = self.page(viewer_id=request.user.id, user_id=account_id, limit=params["limit"],
                                       cursor=params.get("max_id"))
        return self.paged([self.account(u) for u in users], limit=params["limit"], next_max_id=next_cursor)


class AccountStatusesApi(MastoApi):
    http_method_names = serves("get")
    required_scopes = {"GET": "read:statuses"}

    def get(self, request, account_id: int):
        params = PageParams.page(request.query_params, default=STATUSES_LIMIT, maximum=STATUSES_LIMIT_MAX)
        tweets = selectors.account_statuses(viewer_id=request.user.id, account_id=account_id, **params)
        return self.paged(self.statuses(tweets), limit=params["limit"],
                          next_max_id=tweets[-1].tweet_id if tweets else None,
                          prev_min_id=tweets[0].tweet_id if tweets else None)


class FollowRequestsApi(MastoApi):
    http_method_names = serves("get")
    required_scopes = {"GET": "read:follows"}

    def get(self, request):
        params = PageParams.page(request.query_params, default=ACCOUNTS_LIMIT, maximum=ACCOUNTS_LIMIT_MAX)
        users, next_cursor = social_selectors.follow_requests_page(
            user_id=request.user.id, limit=params["limit"], cursor=params.get("max_id"))
        return self.paged([self.account(u) for u in users], limit=params["limit"], next_max_id=next_cursor)


class FollowRequestAnswerApi(MastoApi):
    """Authorize (``act=follow_request_approve``, the default) or reject
    (``follow_request_reject``) a follow request: the route names the service."""

    http_method_names = serves("post")
    throttle_scope = "follow"
    required_scopes = {"POST": "write:follows"}
    act = staticmethod(social_services.follow_request_approve)

    def post(self, request, account_id: int):
        self.act(followee=request.user, follower_id=account_id)
        return Response(self.relationships([account_id])[0])


# --- Statuses and media -----------------------------------------------------------


# Mastodon parameters with no counterpart here: refused rather than silently dropped.
_UNSUPPORTED = ("in_reply_to_id", "poll", "scheduled_at", "quoted_status_id")


class StatusCreateApi(MastoApi):
    http_method_names = serves("post")
    throttle_scope = "tweet_create"
    required_scopes = {"POST": "write:statuses"}

    class Input(Params):
        status = StrictCharField(required=False, allow_blank=True, allow_null=True, trim_whitespace=False)
        media_ids = OneOrMany(child=IdField(), required=False, default=list)
        visibility = serializers.ChoiceField(["public", "unlisted", "private", "direct"], required=False)
        # Taken and ignored: a status here is never sensitive, has no warning and no language.
        sensitive = serializers.BooleanField(required=False)
        spoiler_text = StrictCharField(required=False, allow_blank=True, allow_null=True)
        language = StrictCharField(required=False, allow_blank=True, allow_null=True)
        in_reply_to_id = serializers.JSONField(required=False, allow_null=True)
        poll = serializers.JSONField(required=False, allow_null=True)
        scheduled_at = serializers.JSONField(required=False, allow_null=True)
        quoted_status_id = serializers.JSONField(required=False, allow_null=True)

    def post(self, request):
        params = self.Input.of(request.data)
        for name in _UNSUPPORTED:
            if params.get(name) not in (None, "", [], {}):
                raise BadRequest(f"{name} is not supported by this server.")
        if params.get("visibility") == "direct":
            raise BadRequest("Direct messages are not supported by this server.")
        try:
            tweet, created = tweet_services.tweet_post(author=request.user, content=params.get("status") or "",
                                                       media_ids=params["media_ids"],
                                                       idempotency_key=idempotency_key(request))
        except DjangoValidationError as exc:
            # The service names /v1's field, ``content``; a Mastodon client sent ``status``.
            if not hasattr(exc, "error_dict"):
                raise
            raise DjangoValidationError({"status" if field == "content" else field: errors
                                         for field, errors in exc.error_dict.items()}) from None
        if created:
            return Response(self.statuses([_status_shown(request, tweet.id)])[0])
        # A replayed key answers the status it posted, nothing is posted again, as /v1
        # does: also when it was deleted since (shown as posted, to its author alone).
        shown = tweet_visible_to(tweet_id=tweet.id, viewer_id=request.user.id) or TweetEntry.of(tweet)
        return Response(self.statuses([shown])[0], headers={"Idempotent-Replayed": "true"})


def _status_shown(request, status_id: int) -> TweetEntry:
    """The public tweet object of a status the caller may see; else 404."""
    tweet = tweet_visible_to(tweet_id=status_id, viewer_id=request.user.id)  # HasScope: a user
    if tweet is None:
        raise NotFound("Record not found")
    return tweet


class StatusApi(MastoApi):
    http_method_names = serves("get", "delete")
    required_scopes = {"GET": "read:statuses", "DELETE": "write:statuses"}

    def get(self, request, status_id: int):
        return Response(self.statuses([_status_shown(request, status_id)])[0])

    def delete(self, request, status_id: int):
        tweet = tweet_visible_to(tweet_id=status_id, viewer_id=request.user.id)
        if tweet is None and request.user.has_perm("tweets.delete_tweet"):
            tweet = tweet_shown(tweet_id=status_id)  # a moderator deletes what they cannot see, as on /v1
        if tweet is None:
            raise NotFound("Record not found")
        tweet_services.tweet_delete(tweet_id=status_id, actor=request.user)
        # Mastodon answers the deleted status with its source text, for "delete and redraft".
        return Response({**self.statuses([tweet])[0], "text": tweet.content})


class StatusContextApi(MastoApi):
    """There are no replies here: a visible status's thread is itself alone."""

    http_method_names = serves("get")
    required_scopes = {"GET": "read:statuses"}

    def get(self, request, status_id: int):
        _status_shown(request, status_id)
        return Response({"ancestors": [], "descendants": []})


class Focus(serializers.Field):
    """Mastodon's ``focus``: ``"x,y"``, each a number in [-1, 1]."""

    default_error_messages = {
        "invalid": 'must be "x,y", two numbers between -1.0 and 1.0.',
        "range": "x and y must each be between -1.0 and 1.0.",
    }

    def to_internal_value(self, data) -> tuple[float, float]:
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            x, y = (float(part) for part in data.split(","))
        except ValueError:
            self.fail("invalid")
        if not (-1.0 <= x <= 1.0 and -1.0 <= y <= 1.0):  # NaN fails these too
            self.fail("range")
        return x, y

    def to_representation(self, value) -> str:
        return f"{value[0]},{value[1]}"


class MediaDescription(Params):
    """What an uploader may say of a medium, on upload or after: ``description``, ``focus``."""

    description = StrictCharField(max_length=DESCRIPTION_MAX_LENGTH, required=False, allow_blank=True,
                                  allow_null=True, trim_whitespace=False)
    focus = Focus(required=False, allow_null=True)


class MediaCreateApi(MastoApi):
    """The one request that carries a file: refused from its headers before the body is
    read, then streamed to object storage as it arrives, in bounded memory and under a
    hard cap (``media.uploads``); recorded once stored, outside any transaction."""

    http_method_names = serves("post")
    required_scopes = {"POST": "write:media"}
    throttle_scope = "media"
    parser_classes = [SafeMultiPartParser]

    class Input(MediaDescription):
        file = serializers.FileField(error_messages={**CANT_BE_BLANK, "invalid": "can't be blank"})

    def post(self, request):
        quota_left = uploads.check_request(request, owner_id=request.user.id)
        handler = uploads.MediaUploadHandler(request._request, owner_id=request.user.id, quota_left=quota_left)
        request._request.upload_handlers = [handler]
        recorded = False
        try:
            params = self.Input.of(request.data)
            upload = params["file"]
            media = media_services.media_upload_record(owner_id=request.user.id, name=upload.media_name,
                                                       content_type=upload.content_type,
                                                       size_bytes=upload.size,
                                                       description=params.get("description") or "",
                                                       focus=params.get("focus"))
            recorded = True
        finally:
            if not recorded:
                handler.discard()
        return Response(_media_entity(media))


class MediaApi(MastoApi):
    """An upload of the caller's, until a status takes it, as Mastodon serves it: shown
    (with its URL: uploads here are stored at once, never still processing, so always a
    200) and described (``description``, ``focus``). Another's, an unknown one or one
    already on a status: 404, as Mastodon finds only unattached media of the caller's."""

    http_method_names = serves("get", "put")
    required_scopes = {"GET": "write:media", "PUT": "write:media"}

    Input = MediaDescription

    def get(self, request, media_id: int):
        return Response(_media_entity(media_selectors.media_owned_upload(owner_id=request.user.id,
                                                                           media_id=media_id)))

    def put(self, request, media_id: int):
        params = self.Input.of(request.data)
        media = media_services.media_describe(owner_id=request.user.id, media_id=media_id,
                                              description=params.get("description"), focus=params.get("focus"))
        return Response(_media_entity(media))


def _media_entity(media) -> dict:
    return entities.media_attachment(str(media.id), media_services.upload_url(media), media.content_type,
                                     description=media.description, focus=media.focus)


# --- The home timeline and its read position -----------------------------------------


class MastodonHomeFirstReads(HomeTimelineFirstReads):
    """``/v1``'s first reads of the home timeline, with Mastodon's parameters: ``max_id``
    is the cursor and ``min_id`` the since (``since_id`` only filters what they give)."""

    cursor_param = "max_id"
    since_param = "min_id"

    @staticmethod
    def parse(query) -> dict:
        return PageParams.page(query, default=STATUSES_LIMIT, maximum=STATUSES_LIMIT_MAX)


class HomeTimelineApi(ReadsFirst, MastoApi):
    """Mastodon's home timeline over the same read as ``/v1/timeline/home``, past the
    cache to the very first tweet: ``max_id`` reads older than it, ``min_id`` the page
    just newer than it (no gap), ``since_id`` the newest page newer than it."""

    http_method_names = serves("get")
    throttle_scope = "timeline"
    authentication_classes = [MastodonReaderAuthentication]  # needs only the reader's id
    required_scopes = {"GET": "read:statuses"}
    first_reads = MastodonHomeFirstReads

    def get(self, request):
        params, prefetched = MastodonHomeFirstReads.of(request)  # an invalid query: a 422
        # The prefetched state depends on max_id, min_id and limit only; since_id filters what it gives.
        page = timeline_page_for_user(user_id=request.user.id, limit=params["limit"], cursor=params.get("max_id"),
                                      since=params.get("min_id"),
                                      after=None if "min_id" in params else params.get("since_id"),
                                      prefetched=prefetched)
        return self.paged(self.statuses_json(page.tweets), limit=params["limit"], next_max_id=page.next_cursor,
                          prev_min_id=page.tweets[0].tweet_id if page.tweets else None)


class MarkerPosition(serializers.Serializer):
    last_read_id = IdField(error_messages=CANT_BE_BLANK)
    version = serializers.IntegerField(required=False)


class MarkersApi(MastoApi):
    http_method_names = serves("get", "post")
    required_scopes = {"GET": "read:statuses", "POST": "write:statuses"}

    class Query(Params):
        timeline = OneOrMany(child=StrictCharField(), required=False, default=list)

    class Input(Params):
        # Only the home timeline's position is kept (there are no notifications here);
        # Mastodon's other timeline, ``notifications``, is taken and ignored.
        home = MarkerPosition(required=False)
        notifications = serializers.DictField(required=False)

    def get(self, request):
        names = self.Query.of(request.query_params)["timeline"] or list(services.TIMELINES)
        markers = selectors.markers_of(user_id=request.user.id, timelines=names)
        return Response({m.timeline: entities.marker(m) for m in markers})

    def post(self, request):
        params, answer = self.Input.of(request.data), {}
        for timeline in services.TIMELINES:
            if timeline in params:
                marker = services.marker_set(user_id=request.user.id, timeline=timeline, **params[timeline])
                answer[timeline] = entities.marker(marker)
        return Response(answer)


# --- What this server has none of ----------------------------------------------------


class NothingHereApi(MastoApi):
    """Collections Mastodon clients load at start that this server has no such things
    for (notifications, lists, filters, …): an empty list, truthfully, rather than a
    404 that some clients treat as a broken server."""

    http_method_names = serves("get")
    required_scopes = {"GET": "read"}

    def get(self, request, **kwargs):
        return Response([])


class CustomEmojisApi(MastoApi):
    """The server's custom emojis, public: there are none."""

    http_method_names = serves("get")
    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request):
        return Response([])


class NoRouteApi(MastoApi):
    """Any other path under ``/api/``: Mastodon's 404, whatever the method."""

    http_method_names = serves("get", "post", "put", "patch", "delete")
    authentication_classes = []
    permission_classes = [AllowAny]

    def get(self, request, **kwargs):
        raise NotFound("Record not found")

    post = put = patch = delete = get


class PreferencesApi(MastoApi):
    http_method_names = serves("get")
    required_scopes = {"GET": "read:accounts"}

    def get(self, request):
        return Response({"posting:default:visibility": "private" if request.user.is_private else "public",
                         "posting:default:sensitive": False, "posting:default:language": None,
                         "reading:expand:media": "default", "reading:expand:spoilers": False})
