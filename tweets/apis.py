"""HTTP endpoints for tweets: thin views over services and selectors."""
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core import schema
from core.exceptions import NotFound
from core.fields import ID_REGEX, IDEMPOTENCY_KEY_REGEX, NO_NUL, StrictCharField, idempotency_key
from core.pagination import IdField
from media.services import MAX_MEDIA_PER_TWEET
from social.authentication import CachedUserJWTAuthentication

from . import objects, services, text
from .selectors import tweet_visible_to

_TweetCreated = inline_serializer(
    "TweetCreated", {"tweet_id": serializers.CharField(), "timestamp": serializers.IntegerField()})


# The request as OpenAPI states it, beyond what the serializer's fields say: text
# (at most MAX_WEIGHTED_LENGTH by Twitter's weighted count, so at most that many
# characters unless it holds URLs) with something other than white space, or at
# least one media id.
# That the media must be the poster's own finished uploads no schema can say: a
# 400 names the id.
_TWEET_CREATE_REQUEST = {
    "type": "object",
    "properties": {
        "content": {"type": "string", "maxLength": text.MAX_RAW_LENGTH, "pattern": NO_NUL,
                    "description": f"At most {text.MAX_WEIGHTED_LENGTH} by Twitter's weighted length (a URL "
                                   f"counts {text.URL_WEIGHT}, CJK and emoji 2); may be blank only with media."},
        "media_ids": {"type": "array", "maxItems": MAX_MEDIA_PER_TWEET, "uniqueItems": True,
                      "items": {"type": "string", "pattern": f"^{ID_REGEX}$"},
                      "description": "Your own uploads (POST /v1/media), uploaded and not attached yet."},
    },
    "anyOf": [
        {"required": ["content"], "properties": {"content": {"pattern": r"\S", "maxLength": text.MAX_WEIGHTED_LENGTH}}},
        {"required": ["media_ids"], "properties": {"media_ids": {"minItems": 1}}},
    ],
}


class TweetCreateApi(APIView):
    throttle_scope = "tweet_create"
    # The poster's id is enough: the row is locked and read when the id is minted.
    authentication_classes = [CachedUserJWTAuthentication]

    class TweetCreateInputSerializer(serializers.Serializer):
        content = StrictCharField(
            allow_blank=True, trim_whitespace=False, max_length=text.MAX_RAW_LENGTH, required=False, default="")
        media_ids = serializers.ListField(child=IdField(), max_length=MAX_MEDIA_PER_TWEET, required=False,
                                          default=list)

    @extend_schema(
        request={"application/json": _TWEET_CREATE_REQUEST},
        parameters=[OpenApiParameter(
            "Idempotency-Key", str, OpenApiParameter.HEADER, required=False, pattern=IDEMPOTENCY_KEY_REGEX,
            description="Retry-safe posting: the same key within 24 h answers the first tweet "
                        "again (200, header Idempotent-Replayed: true) and creates nothing; the same "
                        "key with a different content or media_ids is refused (422).")],
        responses={
            (201, "application/json"): _TweetCreated,
            (200, "application/json"): _TweetCreated,
            409: schema.Detail,
            422: schema.Detail,
        },
    )
    def post(self, request):
        data = self.TweetCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tweet, created = services.tweet_post(
            author=request.user, idempotency_key=idempotency_key(request), **data.validated_data)
        return Response(
            {"tweet_id": str(tweet.id), "timestamp": int(tweet.created_at.timestamp())},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
            headers=None if created else {"Idempotent-Replayed": "true"},
        )


class TweetDetailApi(APIView):
    @extend_schema(responses={200: objects.TweetSchema, 404: schema.Detail})
    def get(self, request, tweet_id: int):
        tweet = tweet_visible_to(tweet_id=tweet_id, viewer_id=request.user.id)
        if tweet is None:
            raise NotFound("No such tweet.")
        return Response(tweet.to_public())

    @extend_schema(responses={204: None, 403: schema.Detail, 404: schema.Detail})
    def delete(self, request, tweet_id: int):
        services.tweet_delete(tweet_id=tweet_id, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
