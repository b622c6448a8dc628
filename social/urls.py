from django.urls import path

from . import apis

urlpatterns = [
    path("auth/register", apis.RegisterApi.as_view(), name="register"),
    path("auth/token", apis.TokenObtainApi.as_view(), name="token"),
    path("auth/token/refresh", apis.TokenRefreshApi.as_view(), name="token-refresh"),
    path("users/me", apis.UserMeApi.as_view(), name="user-me"),
    path("users/<id:user_id>", apis.UserDetailApi.as_view(), name="user-detail"),
    path("users/<id:user_id>/follow", apis.FollowApi.as_view(), name="follow"),
    path("users/<id:user_id>/followers", apis.FollowersApi.as_view(), name="followers"),
    path("users/<id:user_id>/following", apis.FollowingApi.as_view(), name="following"),
    path("follow-requests", apis.FollowRequestsApi.as_view(), name="follow-requests"),
    path("follow-requests/<id:user_id>/approve", apis.FollowRequestApproveApi.as_view(), name="follow-approve"),
    path("follow-requests/<id:user_id>/reject", apis.FollowRequestRejectApi.as_view(), name="follow-reject"),
]
