"""A user's sessions, in ``/v1``: every sign-in holding a token for the account, and revoking one.

``GET /v1/auth/sessions`` lists them: each OAuth access token of the user (an app's
sign-in, with its refresh token if it has one) and each live ``/v1`` refresh token
(a sign-in at ``/v1/auth/token``, followed through its rotations). No token value
is ever shown. ``DELETE /v1/auth/sessions/{session_id}`` revokes one: the OAuth
token through django-oauth-toolkit's own revocation (its refresh token too; the
token cache forgets it once that commits, ``receivers``), or the ``/v1`` refresh
token (``social.tokens.jwt_session_revoke``; its access token, which lives
``JWT_ACCESS_MINUTES``, is not recalled, as at ``/v1/auth/logout``).

It lives here, in the layer that may use both token stores, and is routed under
``/v1`` (``config/urls.py``) with ``/v1``'s authentication and error shape.
"""
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from oauth2_provider.models import get_access_token_model, revoke_access_token
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core import schema
from core.exceptions import NotFound
from core.fields import ID_REGEX
from social import tokens as social_tokens
from social.authentication import SafeJWTAuthentication

SESSION_ID_PATTERN = rf"(?:jwt|oauth)-(?:{ID_REGEX})"  # the row's id: a positive 64-bit one


@dataclass(frozen=True)
class Session:
    session_id: str
    kind: str  # "jwt" (a /v1 sign-in) or "oauth" (an app's)
    app_name: str | None
    app_website: str | None
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    current: bool  # the session of the token this request bears


def sessions_of(*, user_id: int, family: object = None) -> list[Session]:
    """The user's sessions, newest first; ``family``: the ``/v1`` sign-in of the caller's token."""
    found = [Session(session_id=f"jwt-{s.outstanding_id}", kind="jwt", app_name=None, app_website=None,
                     scopes=[], created_at=s.created, expires_at=s.expires,
                     current=s.family is not None and s.family == family)
             for s in social_tokens.jwt_sessions(user_id=user_id)]
    for token in (get_access_token_model().objects.filter(user_id=user_id, expires__gt=timezone.now())
                  .select_related("application__mastodon")):
        app = token.application
        profile = getattr(app, "mastodon", None) if app is not None else None
        found.append(Session(session_id=f"oauth-{token.id}", kind="oauth",
                             app_name=app.name if app is not None else None,
                             app_website=(profile.website or None) if profile is not None else None,
                             scopes=token.scope.split(), created_at=token.created, expires_at=token.expires,
                             current=False))
    return sorted(found, key=lambda s: s.created_at, reverse=True)


def session_revoke(*, user_id: int, session_id: str) -> None:
    """Revoke the user's session ``session_id``; ``NotFound`` for none (or another user's)."""
    kind, _, number = session_id.partition("-")
    if kind == "jwt":
        if not social_tokens.jwt_session_revoke(user_id=user_id, outstanding_id=int(number)):
            raise NotFound("No such session.")
        return
    with transaction.atomic():
        token = get_access_token_model().objects.filter(id=int(number), user_id=user_id).first()
        if token is None:
            raise NotFound("No such session.")
        revoke_access_token(token)  # its refresh token too


class SessionOutputSerializer(serializers.Serializer):
    session_id = serializers.CharField(help_text="`jwt-N` (a /v1 sign-in) or `oauth-N` (an app's).")
    kind = serializers.ChoiceField(choices=["jwt", "oauth"])
    app_name = serializers.CharField(allow_null=True, help_text="The OAuth app's name; null for a /v1 sign-in.")
    app_website = serializers.CharField(allow_null=True)
    scopes = serializers.ListField(child=serializers.CharField(), help_text="An OAuth token's; [] for /v1.")
    created_at = serializers.DateTimeField(help_text="When signed in (for /v1: refreshed last).")
    expires_at = serializers.DateTimeField()
    current = serializers.BooleanField(help_text="The /v1 sign-in of the token this request bears.")


class SessionsApi(APIView):
    """The caller's sessions: every app and ``/v1`` sign-in holding a token for the account."""

    authentication_classes = [SafeJWTAuthentication]

    @extend_schema(responses={200: inline_serializer("SessionList", {"data": SessionOutputSerializer(many=True)})})
    def get(self, request):
        family = request.auth.get(social_tokens.FAMILY_CLAIM) if request.auth is not None else None
        return Response({"data": [SessionOutputSerializer(s).data
                                  for s in sessions_of(user_id=request.user.id, family=family)]})


class SessionApi(APIView):
    authentication_classes = [SafeJWTAuthentication]

    @extend_schema(responses={204: None, 404: OpenApiResponse(schema.Detail, description="No such session of yours.")})
    def delete(self, request, session_id: str):
        """Revoke one of the caller's sessions: it can no longer refresh, and an OAuth token stops
        working at once (a /v1 access token already issued works until it expires)."""
        session_revoke(user_id=request.user.id, session_id=session_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
