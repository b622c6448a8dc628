"""HTTP endpoint of the home timeline."""
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.pagination import IdField, PageParams
from social.authentication import CachedUserJWTAuthentication
from tweets.objects import TweetSchema

from .selectors import timeline_page_for_user


class TimelineParams(PageParams):
    since = IdField(required=False, help_text="Return the `limit` tweets just newer than this id (pull-to-refresh).")

    def validate(self, attrs):
        if "cursor" in attrs and "since" in attrs:
            raise serializers.ValidationError("Give either cursor (older tweets) or since (newer tweets), not both.")
        return attrs


TimelinePage = inline_serializer("TimelinePage", {
    "data": serializers.ListField(child=TweetSchema),
    "next_cursor": serializers.CharField(allow_null=True),
    "prev_cursor": serializers.CharField(allow_null=True),
})


class HomeTimelineApi(APIView):
    throttle_scope = "timeline"  # reads per user (core/throttling.py)
    authentication_classes = [CachedUserJWTAuthentication]  # needs only the reader's id

    @extend_schema(parameters=[TimelineParams], responses={200: TimelinePage})
    def get(self, request):
        params = TimelineParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        page = timeline_page_for_user(user_id=request.user.id, limit=params.validated_data["limit"],
                                      cursor=params.validated_data.get("cursor"),
                                      since=params.validated_data.get("since"))
        return Response({"data": page.tweets, "next_cursor": page.next_cursor, "prev_cursor": page.prev_cursor})
