"""HTTP endpoints for tweets: thin views over services and selectors."""
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core import schema
from core.exceptions import NotFound
from core.fields import StrictCharField
from core.pagination import IdField

from . import objects, services, text
from .selectors import tweet_visible_to

_TweetCreated = inline_serializer(
    "TweetCreated", {"tweet_id": serializers.CharField(), "timestamp": serializers.IntegerField()})


class TweetCreateApi(APIView):
    throttle_scope = "tweet_create"

    class TweetCreateInputSerializer(serializers.Serializer):
        content = StrictCharField(
            allow_blank=True, trim_whitespace=False, max_length=text.MAX_RAW_LENGTH, required=False, default="")
        media_ids = serializers.ListField(child=IdField(), max_length=4, required=False, default=list)

    class IdempotencyKeyHeader(serializers.Serializer):
        # Printable ASCII, as for any HTTP token a client makes up (a UUID, say).
        key = serializers.RegexField(r"^[\x21-\x7e]{1,255}$", required=False, error_messages={
            "invalid": "Idempotency-Key must be 1-255 printable ASCII characters."})

    @extend_schema(
        request=TweetCreateInputSerializer,
        parameters=[OpenApiParameter(
            "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
            description="Retry-safe posting: the same key within 24 h answers the first tweet "
                        "again (200, header Idempotent-Replayed: true) and creates nothing.")],
        responses={
            (201, "application/json"): _TweetCreated,
            (200, "application/json"): _TweetCreated,
            400: schema.Detail,
            409: schema.Detail,
        },
    )
    def post(self, request):
        data = self.TweetCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        header = self.IdempotencyKeyHeader(data={"key": request.headers["Idempotency-Key"]}
                                           if "Idempotency-Key" in request.headers else {})
        header.is_valid(raise_exception=True)
        tweet, created = services.tweet_post(
            author=request.user, idempotency_key=header.validated_data.get("key"), **data.validated_data)
        return Response(
            {"tweet_id": str(tweet.id), "timestamp": int(tweet.created_at.timestamp())},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
            headers=None if created else {"Idempotent-Replayed": "true"},
        )


class TweetDetailApi(APIView):
    @extend_schema(responses={200: objects.TweetSchema, 404: schema.Detail})
    def get(self, request, tweet_id: int):
        tweet = tweet_visible_to(tweet_id=tweet_id, viewer=request.user)
        if tweet is None:
            raise NotFound("No such tweet.")
        return Response(tweet)

    @extend_schema(responses={204: None, 403: schema.Detail, 404: schema.Detail})
    def delete(self, request, tweet_id: int):
        services.tweet_delete(tweet_id=tweet_id, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
