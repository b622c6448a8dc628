"""HTTP endpoint of the home timeline."""
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from core import redis as core_redis
from core.pagination import IdField, PageParams
from core.request_notes import FirstReads, ReadsFirst, notes_of
from social.authentication import CachedUserJWTAuthentication
from tweets.objects import TweetSchema, public_json

from .selectors import timeline_page_for_user, timeline_prefetch
from .store import HomeState


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
    """The cached timeline's page, asked for in the reader's first round trip with the
    rate limit, with the cached entries of the page's tweets on one server (a warm first
    page then costs one round trip).

    A home timeline view names its query's parser (``parse``) and which of its
    parameters are the cursor (older than) and the since (just newer than):
    ``/v1``'s are ``cursor`` and ``since``; the Mastodon API's subclass reads its own.
    """

    cursor_param = "cursor"
    since_param = "since"
    params: dict | None = None  # the query, once validated
    page: core_redis.Reply[HomeState | None] | None = None  # the cached timeline's reply

    @staticmethod
    def parse(query) -> dict:
        return TimelineParams.parse(query)

    def queue(self, round_trip, *, request, user_id: int) -> None:
        try:
            self.params = self.parse(request.query_params)
        except serializers.ValidationError:
            return  # the view refuses the query
        self.page = timeline_prefetch(round_trip, user_id=user_id, limit=self.params["limit"],
                                      cursor=self.params.get(self.cursor_param),
                                      since=self.params.get(self.since_param))

    @classmethod
    def of(cls, request) -> tuple[dict, core_redis.Reply[HomeState | None] | None]:
        """The request's validated query and the cached timeline's reply, as queued in its
        first round trip; with nothing queued (or the query invalid), the query parsed
        afresh (its ``ValidationError`` raised for the view to answer) and no reply."""
        reads = notes_of(request).first_reads
        if isinstance(reads, cls) and reads.params is not None:
            return reads.params, reads.page
        return cls.parse(request.query_params), None


class HomeTimelineApi(ReadsFirst, APIView):
    throttle_scope = "timeline"  # reads per user (core/throttling.py)
    authentication_classes = [CachedUserJWTAuthentication]  # needs only the reader's id
    first_reads = HomeTimelineFirstReads

    @extend_schema(parameters=[TimelineParams], responses={200: TimelinePage})
    def get(self, request):
        params, prefetched = HomeTimelineFirstReads.of(request)  # an invalid query: a 400
        page = timeline_page_for_user(user_id=request.user.id, limit=params["limit"], cursor=params.get("cursor"),
                                      since=params.get("since"), prefetched=prefetched)
        return Response({"data": [public_json(tweet) for tweet in page.tweets],
                         "next_cursor": page.next_cursor, "prev_cursor": page.prev_cursor})
