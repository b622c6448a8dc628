"""HTTP endpoint of the home timeline."""
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core.pagination import IdField, PageParams
from social.authentication import CachedUserJWTAuthentication
from tweets.objects import TweetSchema

from .selectors import timeline_page_for_user, timeline_prefetch


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
    params: dict | None = None  # the query, once validated
    prefetched = None  # the cached timeline's reply, from the authentication's round trip

    def prefetch(self, round_trip, request, user_id: int) -> None:
        """Called by the authentication: the cached timeline is asked for in the reader's
        own round trip, with the rate limit (a warm first page then costs two in all)."""
        try:
            self.params = TimelineParams.parse(request.query_params)
        except serializers.ValidationError:
            return  # get() answers the 400
        self.prefetched = timeline_prefetch(round_trip, user_id=user_id, limit=self.params["limit"],
                                            cursor=self.params.get("cursor"), since=self.params.get("since"))

    @extend_schema(parameters=[TimelineParams], responses={200: TimelinePage})
    def get(self, request):
        params = self.params if self.params is not None else TimelineParams.parse(request.query_params)
        page = timeline_page_for_user(user_id=request.user.id, limit=params["limit"], cursor=params.get("cursor"),
                                      since=params.get("since"), prefetched=self.prefetched)
        return Response({"data": [tweet.to_public() for tweet in page.tweets],
                         "next_cursor": page.next_cursor, "prev_cursor": page.prev_cursor})
