"""HTTP endpoints for accounts and the follow graph: thin views over services and selectors."""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer
from rest_framework_simplejwt.views import TokenObtainPairView

from core import schema
from core.fields import StrictBooleanField, StrictCharField, StrictRegexField
from core.pagination import PageParams

from . import selectors, services, tokens
from .models import DISPLAY_NAME_MAX_LENGTH, USERNAME_PATTERN, User


class UserOutputSerializer(serializers.ModelSerializer):
    user_id = serializers.CharField(source="id")

    class Meta:
        model = User
        fields = ["user_id", "username", "display_name", "is_private", "followers_count", "following_count"]


def _users_page_response(users, next_cursor) -> Response:
    return Response({
        "data": UserOutputSerializer(users, many=True).data,
        "next_cursor": str(next_cursor) if next_cursor is not None else None,
    })


_FIELD_ERRORS = OpenApiResponse(OpenApiTypes.OBJECT, description='Invalid input: `{"field": ["message", ...]}`.')
_TOKENS = inline_serializer("TokenPair", {"access": serializers.CharField(), "refresh": serializers.CharField()})
_BAD_TOKEN = OpenApiResponse(schema.Detail, description="Malformed, expired or revoked token, or no active user.")


class PasswordField(StrictCharField):
    """The password as typed, surrounding spaces and all: registration and login must read the same string."""

    def __init__(self, **kwargs):
        super().__init__(trim_whitespace=False, write_only=True, style={"input_type": "password"}, **kwargs)


@extend_schema_field({"type": "string", "writeOnly": True, "minLength": 8, "maxLength": 128,
                     "pattern": r"^[^\x00]*[^\x00\d][^\x00]*$",
                     "description": "At least 8 characters, not all digits, not a common password, "
                                    "not like the username (Django's password validators)."})
class NewPasswordField(PasswordField):
    """A password being chosen: Django's MinimumLengthValidator (8) and NumericPasswordValidator
    as the schema can state them; the other validators answer a 400 on the field."""

    def __init__(self, **kwargs):
        super().__init__(min_length=8, max_length=128, error_messages={
            "min_length": "This password is too short. It must contain at least 8 characters."}, **kwargs)


class RegisterApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_scope = "register"

    class RegisterInputSerializer(serializers.Serializer):
        username = StrictRegexField(USERNAME_PATTERN, max_length=15, error_messages={
            "invalid": "1-15 letters, digits or underscores."})
        password = NewPasswordField()
        display_name = StrictCharField(max_length=DISPLAY_NAME_MAX_LENGTH, required=False, allow_blank=True, default="")

    @extend_schema(request=RegisterInputSerializer, responses={201: inline_serializer(
        "Registered", {"user_id": serializers.CharField(), "username": serializers.CharField()}),
        400: _FIELD_ERRORS})
    def post(self, request):
        data = self.RegisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_register(**data.validated_data)
        return Response({"user_id": str(user.id), "username": user.username}, status=status.HTTP_201_CREATED)


class UserDetailApi(APIView):
    @extend_schema(responses={200: UserOutputSerializer, 404: schema.Detail})
    def get(self, request, user_id: int):
        return Response(UserOutputSerializer(selectors.user_get(user_id=user_id)).data)


class UserMeApi(APIView):
    @property
    def throttle_scope(self) -> str | None:
        return "profile" if self.request.method == "PATCH" else None  # reading one's profile is free

    class UserUpdateInputSerializer(serializers.Serializer):
        display_name = StrictCharField(max_length=DISPLAY_NAME_MAX_LENGTH, required=False, allow_blank=True)
        is_private = StrictBooleanField(required=False)

    @extend_schema(responses={200: UserOutputSerializer})
    def get(self, request):
        return Response(UserOutputSerializer(request.user).data)

    @extend_schema(request=UserUpdateInputSerializer, responses={200: UserOutputSerializer})
    def patch(self, request):
        data = self.UserUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_update(user=request.user, **data.validated_data)
        return Response(UserOutputSerializer(user).data)


_USERS_PAGE = inline_serializer("UserPage", {
    "data": UserOutputSerializer(many=True),
    "next_cursor": serializers.CharField(allow_null=True),
})
_FOLLOW = inline_serializer("FollowState", {"following": serializers.BooleanField(),
                                            "status": serializers.CharField(required=False)})


class FollowApi(APIView):
    throttle_scope = "follow"

    @extend_schema(request=None, responses={200: _FOLLOW, 400: schema.Detail, 404: schema.Detail})
    def post(self, request, user_id: int):
        state = services.follow_create(follower=request.user, followee_id=user_id)
        accepted = state == state.ACCEPTED
        return Response({"following": accepted, "status": "following" if accepted else "requested"})

    @extend_schema(responses={200: _FOLLOW})
    def delete(self, request, user_id: int):
        services.follow_delete(follower=request.user, followee_id=user_id)
        return Response({"following": False})


class FollowersApi(APIView):
    page = staticmethod(selectors.followers_page)

    @extend_schema(parameters=[PageParams], responses={200: _USERS_PAGE, 403: schema.Detail, 404: schema.Detail})
    def get(self, request, user_id: int):
        """A private account's lists are shown only to the account and its accepted followers (403 to others)."""
        params = PageParams.parse(request.query_params)
        return _users_page_response(*self.page(viewer_id=request.user.id, user_id=user_id,
                                               limit=params["limit"], cursor=params.get("cursor")))


class FollowingApi(FollowersApi):
    page = staticmethod(selectors.following_page)


class FollowerRemoveApi(APIView):
    throttle_scope = "follow"
    @extend_schema(responses={204: None})
    def delete(self, request, user_id: int):
        """Remove a follower: they stop seeing this account's private tweets at once and must ask
        again to follow. Idempotent; a pending request is left to reject."""
        services.follower_remove(followee=request.user, follower_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class FollowRequestsApi(APIView):
    @extend_schema(parameters=[PageParams], responses={200: _USERS_PAGE})
    def get(self, request):
        params = PageParams.parse(request.query_params)
        return _users_page_response(*selectors.follow_requests_page(
            user_id=request.user.id, limit=params["limit"], cursor=params.get("cursor")))


class FollowRequestApproveApi(APIView):
    throttle_scope = "follow"

    @extend_schema(request=None, responses={200: schema.Status, 404: schema.Detail})
    def post(self, request, user_id: int):
        services.follow_request_approve(followee=request.user, follower_id=user_id)
        return Response({"status": "approved"})


class FollowRequestRejectApi(APIView):
    throttle_scope = "follow"

    @extend_schema(request=None, responses={200: schema.Status, 404: schema.Detail})
    def post(self, request, user_id: int):
        services.follow_request_reject(followee=request.user, follower_id=user_id)
        return Response({"status": "rejected"})


class TokenObtainInputSerializer(TokenObtainPairSerializer):
    """simplejwt's login, reading the password exactly as registration does (simplejwt's field trims it)."""

    token_class = tokens.SessionRefreshToken  # a new family, with the user's token version

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["password"] = PasswordField()


class TokenObtainApi(TokenObtainPairView):
    serializer_class = TokenObtainInputSerializer
    throttle_scope = "login"  # per username and per IP, checked before the password is

    @extend_schema(responses={200: _TOKENS, 400: _FIELD_ERRORS,
                              401: OpenApiResponse(schema.Detail, description="Wrong credentials or no active user.")})
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class RefreshInputSerializer(serializers.Serializer):
    refresh = StrictCharField()


class TokenRefreshApi(APIView):
    """A new token pair for a refresh token, which is revoked (``tokens.refresh_token_rotate``)."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request):
        return 'Bearer realm="api"'  # what makes a refused token a 401, not a 403

    @extend_schema(request=RefreshInputSerializer, responses={200: _TOKENS, 400: _FIELD_ERRORS, 401: _BAD_TOKEN})
    def post(self, request):
        data = RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(tokens.refresh_token_rotate(refresh=data.validated_data["refresh"]))


class LogoutApi(APIView):
    """Revoke one of the caller's refresh tokens; the caller authenticates with an access token.

    Only the caller's own refresh token is revoked (another user's is a 403);
    a malformed or expired one is a 400, and one already revoked a 204 again.
    The access token stays valid until it expires (``JWT_ACCESS_MINUTES``).
    """

    @extend_schema(request=RefreshInputSerializer, responses={
        204: None, 400: _FIELD_ERRORS,
        401: OpenApiResponse(schema.Detail, description="No valid access token."),
        403: OpenApiResponse(schema.Detail, description="The refresh token is another user's.")})
    def post(self, request):
        data = RefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            tokens.refresh_token_revoke(refresh=data.validated_data["refresh"], user=request.user)
        except InvalidToken as error:  # the caller is authenticated: the token in the body is bad input
            detail = error.detail.get("detail", error.detail) if isinstance(error.detail, dict) else error.detail
            raise serializers.ValidationError({"refresh": [str(detail)]}) from None
        return Response(status=status.HTTP_204_NO_CONTENT)
