"""HTTP endpoint of the home timeline."""
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core import redis as core_redis
from core.pagination import IdField, PageParams
from core.request_notes import FirstReads, ReadsFirst, notes_of
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


class HomeTimelineFirstReads(FirstReads):
    """The cached timeline's first page, asked for in the reader's first round trip with
    the rate limit (a warm first page then costs two round trips in all)."""

    params: dict | None = None  # the query, once validated
    page: core_redis.Reply | None = None  # the cached timeline's reply

    def queue(self, round_trip, *, request, user_id: int) -> None:
        try:
            self.params = TimelineParams.parse(request.query_params)
        except serializers.ValidationError:
            return  # the view answers the 400
        self.page = timeline_prefetch(round_trip, user_id=user_id, limit=self.params["limit"],
                                      cursor=self.params.get("cursor"), since=self.params.get("since"))


class HomeTimelineApi(ReadsFirst, APIView):
    throttle_scope = "timeline"  # reads per user (core/throttling.py)
    authentication_classes = [CachedUserJWTAuthentication]  # needs only the reader's id
    first_reads = HomeTimelineFirstReads

    @extend_schema(parameters=[TimelineParams], responses={200: TimelinePage})
    def get(self, request):
        reads = notes_of(request).first_reads
        if not isinstance(reads, HomeTimelineFirstReads) or reads.params is None:
            reads = HomeTimelineFirstReads()  # the query invalid (a 400 here), or nothing queued
            reads.params = TimelineParams.parse(request.query_params)
        params = reads.params
        page = timeline_page_for_user(user_id=request.user.id, limit=params["limit"], cursor=params.get("cursor"),
                                      since=params.get("since"), prefetched=reads.page)
        return Response({"data": [tweet.to_public() for tweet in page.tweets],
                         "next_cursor": page.next_cursor, "prev_cursor": page.prev_cursor})
