"""The Mastodon client API: thin views over the product's services and selectors.

Each view parses Mastodon's parameters, calls the same service or selector a
``/v1`` view calls (posting is ``tweets.services.tweet_post``, the home timeline
is ``timelines.selectors.timeline_page_for_user``, follows are
``social.services``), and answers Mastodon's entities (``entities``). Errors
have Mastodon's shape, ``{"error": "..."}``; invalid input is a 422 as
Mastodon's validation failures are. Rate limits are the ``/v1`` scopes, with
``X-RateLimit-Reset`` as an ISO 8601 time, as Mastodon sends it.
"""
from datetime import UTC, datetime
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, serializers
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.exceptions import ApplicationError, NotFound
from core.exceptions import exception_handler as core_exception_handler
from core.fields import IdField, StrictCharField
from core.parsers import SafeJSONParser
from core.request_notes import notes_of
from media import services as media_services
from media import storage
from social import selectors as social_selectors
from social import services as social_services
from timelines.selectors import timeline_page_for_user
from tweets import services as tweet_services
from tweets.selectors import tweet_visible_to

from . import entities, oauth, selectors, services
from .authentication import HasScope, MastodonAuthentication, MastodonReaderAuthentication


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
        exc = exceptions.ValidationError(getattr(exc, "message_dict", None) or {"detail": exc.messages})
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


def _iso(unix_seconds: int) -> str:
    return datetime.fromtimestamp(unix_seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class MastoApi(APIView):
    # Not in /v1's OpenAPI schema: Mastodon's own documentation describes this API.
    schema = None
    authentication_classes = [MastodonAuthentication]
    permission_classes = [HasScope]
    parser_classes = [SafeJSONParser, FormParser, MultiPartParser]
    required_scopes: dict[str, str] = {}

    def get_exception_handler(self):
        return mastodon_exception_handler

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        decision = notes_of(request).decision
        if decision is not None:
            response["X-RateLimit-Limit"] = str(decision.limit)
            response["X-RateLimit-Remaining"] = str(decision.remaining)
            response["X-RateLimit-Reset"] = _iso(decision.reset)
        return response

    @property
    def base(self) -> str:
        return self.request.build_absolute_uri("/").rstrip("/")

    def statuses(self, tweets: list[dict]) -> list[dict]:
        authors, mentioned = selectors.users_of(tweets)
        return [entities.status(t, author=authors[int(t["author"]["user_id"])], base=self.base, mentioned=mentioned)
                for t in tweets if int(t["author"]["user_id"]) in authors]

    def account(self, user, **kwargs) -> dict:
        return entities.account(user, base=self.base, **kwargs)

    def relationships(self, user_ids: list[int]) -> list[dict]:
        outgoing, incoming = social_selectors.follow_states(viewer_id=self.request.user.id, user_ids=user_ids)
        return [entities.relationship(i, outgoing=outgoing.get(i), incoming=incoming.get(i)) for i in user_ids]

    def paged(self, items: list, *, next_max_id=None, prev_min_id=None) -> Response:
        """``items`` with the ``Link`` header Mastodon clients page by."""
        url = self.request.build_absolute_uri(self.request.path)
        keep = {"limit": self.request.query_params["limit"]} if "limit" in self.request.query_params else {}
        links = []
        if next_max_id is not None:
            links.append(f'<{url}?{urlencode({**keep, "max_id": next_max_id})}>; rel="next"')
        if prev_min_id is not None:
            links.append(f'<{url}?{urlencode({**keep, "min_id": prev_min_id})}>; rel="prev"')
        return Response(items, headers={"Link": ", ".join(links)} if links else None)


def _one(data, name: str, default=None):
    """One field of a form or JSON body (the last given, for a form's repeated field)."""
    return data.get(name, default) if hasattr(data, "get") else default


def _many(data, name: str) -> list:
    """A list field: ``name[]`` (repeated, in a form) or ``name`` (a JSON array, or one value)."""
    if hasattr(data, "getlist"):
        return data.getlist(f"{name}[]") or data.getlist(name)
    if not isinstance(data, dict):
        return []
    value = data.get(name, data.get(f"{name}[]"))
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _ids(values: list, name: str) -> list[int]:
    field = IdField()
    out = []
    for value in values:
        try:
            out.append(field.run_validation(value if isinstance(value, str) else str(value)))
        except exceptions.ValidationError:
            raise exceptions.ValidationError({name: [f"{value!r} is not an id."]}) from None
    return out


class PageParams(serializers.Serializer):
    max_id = IdField(required=False)
    since_id = IdField(required=False)
    min_id = IdField(required=False)
    limit = serializers.IntegerField(required=False)

    def page(self, *, default: int, maximum: int) -> dict:
        """The validated parameters, ``limit`` made 1 to ``maximum`` as Mastodon clamps it."""
        self.is_valid(raise_exception=True)
        params = dict(self.validated_data)
        params["limit"] = min(max(abs(params.get("limit", default)), 1), maximum)
        return params


# --- Apps, OAuth and the instance -------------------------------------------------


class AppCreateApi(MastoApi):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_scope = "register"  # per client IP, as registrations

    def post(self, request):
        name = _one(request.data, "client_name")
        if not isinstance(name, str) or not name.strip():
            raise exceptions.ValidationError({"client_name": ["can't be blank"]})
        uris = _many(request.data, "redirect_uris")
        uris = [u for value in uris if isinstance(value, str) for u in value.split()]
        if not uris:
            raise exceptions.ValidationError({"redirect_uris": ["can't be blank"]})
        scopes = _one(request.data, "scopes", "read")
        scopes = scopes.split() if isinstance(scopes, str) else scopes
        website = _one(request.data, "website", "") or ""
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes) or not isinstance(website, str):
            raise exceptions.ValidationError({"scopes": ["must be a space-separated string"]})
        app, secret = services.app_register(name=name.strip()[:255], redirect_uris=uris, scopes=scopes or ["read"],
                                            website=website[:500])
        return Response(entities.application(app, scopes=scopes or ["read"], website=website, client_secret=secret))


class AppVerifyApi(MastoApi):
    app_token_allowed = True

    def get(self, request):
        app = request.auth.application
        if app is None:
            raise NotFound("This token was not issued to an app.")
        profile = app.mastodon
        return Response(entities.application(app, scopes=profile.scopes.split(), website=profile.website))


class TokenApi(MastoApi):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_scope = "login"  # per client IP and per username, before the password is checked

    def post(self, request):
        status, body = oauth.token_response(request)
        if status == 200:
            return Response(entities.token(body))
        return Response(body, status=status)


class RevokeApi(MastoApi):
    authentication_classes = []
    permission_classes = [AllowAny]

    def post(self, request):
        status, body = oauth.revocation_response(request)
        return Response(body if status != 200 else {}, status=status)


class InstanceApi(MastoApi):
    authentication_classes = []
    permission_classes = [AllowAny]
    build = staticmethod(entities.instance_v1)

    def get(self, request):
        return Response(self.build(base=self.base, domain=settings.MASTODON_DOMAIN))


class InstanceV2Api(InstanceApi):
    build = staticmethod(entities.instance_v2)


# --- Accounts ---------------------------------------------------------------------


class VerifyCredentialsApi(MastoApi):
    required_scopes = {"GET": "read:accounts"}

    def get(self, request):
        user = social_selectors.user_get(user_id=request.user.id)
        return Response(self.account(user, statuses_count=selectors.statuses_count(user_id=user.id), source=True))


class UpdateCredentialsApi(MastoApi):
    required_scopes = {"PATCH": "write:accounts"}

    class Input(serializers.Serializer):
        display_name = StrictCharField(max_length=50, required=False, allow_blank=True)
        locked = serializers.BooleanField(required=False)

    def patch(self, request):
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        user = social_services.user_update(user=request.user, display_name=fields.get("display_name"),
                                           is_private=fields.get("locked"))
        return Response(self.account(user, statuses_count=selectors.statuses_count(user_id=user.id), source=True))


class AccountApi(MastoApi):
    required_scopes = {"GET": "read:accounts"}

    def get(self, request, account_id: int):
        user = social_selectors.user_get(user_id=account_id)
        return Response(self.account(user, statuses_count=selectors.statuses_count(user_id=user.id)))


class LookupApi(MastoApi):
    required_scopes = {"GET": "read:accounts"}

    def get(self, request):
        acct = request.query_params.get("acct", "").removeprefix("@")
        name, _, domain = acct.partition("@")
        if not name or (domain and domain not in (settings.MASTODON_DOMAIN, request.get_host())):
            raise NotFound("No such account.")
        user = social_selectors.user_by_username(username=name)
        return Response(self.account(user, statuses_count=selectors.statuses_count(user_id=user.id)))


class FollowApi(MastoApi):
    throttle_scope = "follow"
    required_scopes = {"POST": "write:follows"}

    def post(self, request, account_id: int):
        social_services.follow_create(follower=request.user, followee_id=account_id)
        return Response(self.relationships([account_id])[0])


class UnfollowApi(MastoApi):
    throttle_scope = "follow"
    required_scopes = {"POST": "write:follows"}

    def post(self, request, account_id: int):
        social_selectors.user_get(user_id=account_id)
        social_services.follow_delete(follower=request.user, followee_id=account_id)
        return Response(self.relationships([account_id])[0])


class RemoveFromFollowersApi(MastoApi):
    throttle_scope = "follow"
    required_scopes = {"POST": "write:follows"}

    def post(self, request, account_id: int):
        social_selectors.user_get(user_id=account_id)
        social_services.follower_remove(followee=request.user, follower_id=account_id)
        return Response(self.relationships([account_id])[0])


class RelationshipsApi(MastoApi):
    required_scopes = {"GET": "read:follows"}

    def get(self, request):
        ids = _ids(_many(request.query_params, "id"), "id")[:40]
        return Response(self.relationships(list(dict.fromkeys(ids))))


class FollowersApi(MastoApi):
    """Followers (or, below, followees) in the order of ``/v1``'s lists: by account id.
    ``max_id`` is that list's cursor (the last account id seen), which is what the
    ``Link`` header's ``rel="next"`` carries."""

    required_scopes = {"GET": "read:accounts"}
    page = staticmethod(social_selectors.followers_page)

    def get(self, request, account_id: int):
        params = PageParams(data=request.query_params).page(default=40, maximum=80)
        users, next_cursor = self.page(viewer_id=request.user.id, user_id=account_id, limit=params["limit"],
                                       cursor=params.get("max_id"))
        return self.paged([self.account(u) for u in users], next_max_id=next_cursor)


class FollowingApi(FollowersApi):
    page = staticmethod(social_selectors.following_page)


class AccountStatusesApi(MastoApi):
    required_scopes = {"GET": "read:statuses"}

    def get(self, request, account_id: int):
        params = PageParams(data=request.query_params).page(default=20, maximum=40)
        tweets = selectors.account_statuses(viewer_id=request.user.id, account_id=account_id, **params)
        return self.paged(self.statuses(tweets), next_max_id=tweets[-1]["tweet_id"] if tweets else None,
                          prev_min_id=tweets[0]["tweet_id"] if tweets else None)


class FollowRequestsApi(MastoApi):
    required_scopes = {"GET": "read:follows"}

    def get(self, request):
        params = PageParams(data=request.query_params).page(default=40, maximum=80)
        users, next_cursor = social_selectors.follow_requests_page(
            user_id=request.user.id, limit=params["limit"], cursor=params.get("max_id"))
        return self.paged([self.account(u) for u in users], next_max_id=next_cursor)


class FollowRequestAuthorizeApi(MastoApi):
    throttle_scope = "follow"
    required_scopes = {"POST": "write:follows"}
    act = staticmethod(social_services.follow_request_approve)

    def post(self, request, account_id: int):
        self.act(followee=request.user, follower_id=account_id)
        return Response(self.relationships([account_id])[0])


class FollowRequestRejectApi(FollowRequestAuthorizeApi):
    act = staticmethod(social_services.follow_request_reject)


# --- Statuses and media -----------------------------------------------------------


# Mastodon parameters with no counterpart here: refused rather than silently dropped.
_UNSUPPORTED = ("in_reply_to_id", "poll", "scheduled_at", "quoted_status_id")


class StatusCreateApi(MastoApi):
    throttle_scope = "tweet_create"
    required_scopes = {"POST": "write:statuses"}

    class IdempotencyKey(serializers.Serializer):
        key = serializers.RegexField(r"^[\x21-\x7e]{1,255}$", required=False, error_messages={
            "invalid": "Idempotency-Key must be 1-255 printable ASCII characters."})

    def post(self, request):
        data = request.data
        for name in _UNSUPPORTED:
            if _one(data, name) not in (None, "") or _many(data, name):
                raise BadRequest(f"{name} is not supported by this server.")
        if _one(data, "visibility") == "direct":
            raise BadRequest("Direct messages are not supported by this server.")
        text = _one(data, "status", "")
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise exceptions.ValidationError({"status": ["must be a string"]})
        media_ids = _ids(_many(data, "media_ids"), "media_ids")
        key = self.IdempotencyKey(data={"key": request.headers["Idempotency-Key"]}
                                  if "Idempotency-Key" in request.headers else {})
        key.is_valid(raise_exception=True)
        tweet, _ = tweet_services.tweet_post(author=request.user, content=text, media_ids=media_ids,
                                             idempotency_key=key.validated_data.get("key"))
        return Response(self.statuses([tweet_visible_to(tweet_id=tweet.id, viewer=request.user)])[0])


class StatusApi(MastoApi):
    required_scopes = {"GET": "read:statuses", "DELETE": "write:statuses"}

    def _shown(self, status_id: int) -> dict:
        tweet = tweet_visible_to(tweet_id=status_id, viewer=self.request.user)
        if tweet is None:
            raise NotFound("Record not found")
        return tweet

    def get(self, request, status_id: int):
        return Response(self.statuses([self._shown(status_id)])[0])

    def delete(self, request, status_id: int):
        tweet = self._shown(status_id)
        tweet_services.tweet_delete(tweet_id=status_id, actor=request.user)
        # Mastodon answers the deleted status with its source text, for "delete and redraft".
        return Response({**self.statuses([tweet])[0], "text": tweet["content"]})


class MediaCreateApi(MastoApi):
    """The one request that carries a file: the multipart upload is spooled by Django (to
    disk past 2.5 MB) and streamed on to object storage (``media.services.media_upload``)."""

    required_scopes = {"POST": "write:media"}
    parser_classes = [MultiPartParser, FormParser]

    def post(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            raise exceptions.ValidationError({"file": ["can't be blank"]})
        media = media_services.media_upload(owner_id=request.user.id, content_type=upload.content_type or "",
                                            size_bytes=upload.size, fileobj=upload)
        return Response(entities.media_attachment(str(media.id), storage.public_url(media.key), media.content_type))


# --- The home timeline and its read position -----------------------------------------


class HomeTimelineApi(MastoApi):
    """Mastodon's home timeline over the same read as ``/v1/timeline/home``, past the
    cache to the very first tweet: ``max_id`` reads older than it, ``min_id`` the page
    just newer than it (no gap), ``since_id`` the newest page newer than it."""

    throttle_scope = "timeline"
    authentication_classes = [MastodonReaderAuthentication]  # needs only the reader's id
    required_scopes = {"GET": "read:statuses"}

    def get(self, request):
        params = PageParams(data=request.query_params).page(default=20, maximum=40)
        if "min_id" in params:
            page = timeline_page_for_user(user_id=request.user.id, limit=params["limit"], since=params["min_id"],
                                          cursor=params.get("max_id"))
        else:
            page = timeline_page_for_user(user_id=request.user.id, limit=params["limit"],
                                          cursor=params.get("max_id"), after=params.get("since_id"))
        return self.paged(self.statuses(page.tweets), next_max_id=page.next_cursor,
                          prev_min_id=page.tweets[0]["tweet_id"] if page.tweets else None)


class MarkersApi(MastoApi):
    required_scopes = {"GET": "read:statuses", "POST": "write:statuses"}

    def get(self, request):
        names = _many(request.query_params, "timeline") or list(services.TIMELINES)
        markers = selectors.markers_of(user_id=request.user.id, timelines=names)
        return Response({m.timeline: entities.marker(m) for m in markers})

    def post(self, request):
        data, answer = request.data, {}
        for timeline in services.TIMELINES:
            fields = data.get(timeline) if isinstance(data, dict) and not hasattr(data, "getlist") else None
            if not isinstance(fields, dict):  # a form: home[last_read_id]=...
                fields = {key: _one(data, f"{timeline}[{key}]") for key in ("last_read_id", "version")}
                fields = {k: v for k, v in fields.items() if v is not None}
            if not fields:
                continue
            last_read_id = _ids([fields.get("last_read_id", "")], f"{timeline}[last_read_id]")[0]
            version = fields.get("version")
            if version is not None:
                try:
                    version = int(version)
                except (TypeError, ValueError):
                    raise exceptions.ValidationError({f"{timeline}[version]": ["must be an integer"]}) from None
            marker = services.marker_set(user_id=request.user.id, timeline=timeline, last_read_id=last_read_id,
                                         version=version)
            answer[timeline] = entities.marker(marker)
        return Response(answer)


# --- What this server has none of ----------------------------------------------------


class NothingHereApi(MastoApi):
    """Collections Mastodon clients load at start that this server has no such things
    for (notifications, lists, filters, custom emojis, …): an empty list, truthfully,
    rather than a 404 that some clients treat as a broken server."""

    required_scopes = {"GET": "read"}

    def get(self, request, **kwargs):
        return Response([])


class CustomEmojisApi(NothingHereApi):
    authentication_classes = []
    permission_classes = [AllowAny]


class StatusContextApi(StatusApi):
    """There are no replies here: a visible status's thread is itself alone."""

    def get(self, request, status_id: int):
        self._shown(status_id)
        return Response({"ancestors": [], "descendants": []})


class PreferencesApi(MastoApi):
    required_scopes = {"GET": "read:accounts"}

    def get(self, request):
        return Response({"posting:default:visibility": "private" if request.user.is_private else "public",
                         "posting:default:sensitive": False, "posting:default:language": None,
                         "reading:expand:media": "default", "reading:expand:spoilers": False})
