"""HTTP endpoints for accounts and the follow graph: thin views over services and selectors."""
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from core import schema
from core.fields import StrictCharField, StrictRegexField
from core.pagination import PageParams

from . import selectors, services
from .models import USERNAME_PATTERN, User


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


class RegisterApi(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_scope = "register"

    class RegisterInputSerializer(serializers.Serializer):
        username = StrictRegexField(USERNAME_PATTERN, max_length=15, error_messages={
            "invalid": "1-15 letters, digits or underscores."})
        password = StrictCharField(max_length=128, trim_whitespace=False)
        display_name = StrictCharField(max_length=50, required=False, allow_blank=True, default="")

    @extend_schema(request=RegisterInputSerializer, responses={201: inline_serializer(
        "Registered", {"user_id": serializers.CharField(), "username": serializers.CharField()})})
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
    class UserUpdateInputSerializer(serializers.Serializer):
        display_name = StrictCharField(max_length=50, required=False, allow_blank=True)
        is_private = serializers.BooleanField(required=False)

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

    @extend_schema(parameters=[PageParams], responses={200: _USERS_PAGE})
    def get(self, request, user_id: int):
        params = PageParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        return _users_page_response(*self.page(user_id=user_id, limit=params.validated_data["limit"],
                                               cursor=params.validated_data.get("cursor")))


class FollowingApi(FollowersApi):
    page = staticmethod(selectors.following_page)


class FollowRequestsApi(APIView):
    @extend_schema(parameters=[PageParams], responses={200: _USERS_PAGE})
    def get(self, request):
        params = PageParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        return _users_page_response(*selectors.follow_requests_page(
            user_id=request.user.id, limit=params.validated_data["limit"],
            cursor=params.validated_data.get("cursor")))


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


class TokenObtainApi(TokenObtainPairView):
    throttle_scope = "login"  # per username and per IP, checked before the password is


class TokenRefreshSafeSerializer(TokenRefreshSerializer):
    def validate(self, attrs):
        try:
            return super().validate(attrs)
        except (User.DoesNotExist, ValueError, TypeError):  # the token's user is gone, or the claim is no id
            raise exceptions.AuthenticationFailed("The user of this token no longer exists.") from None


class TokenRefreshApi(TokenRefreshView):
    serializer_class = TokenRefreshSafeSerializer
