"""HTTP endpoints for tweets: thin views over services and selectors."""
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core import schema
from core.exceptions import NotFound
from core.fields import StrictCharField

from . import objects, services, text
from .selectors import tweet_visible_to


class TweetCreateApi(APIView):
    class TweetCreateInputSerializer(serializers.Serializer):
        content = StrictCharField(allow_blank=True, trim_whitespace=False, max_length=text.MAX_RAW_LENGTH)

    @extend_schema(request=TweetCreateInputSerializer, responses={201: inline_serializer(
        "TweetCreated", {"tweet_id": serializers.CharField(), "timestamp": serializers.IntegerField()})})
    def post(self, request):
        data = self.TweetCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tweet = services.tweet_create(author=request.user, **data.validated_data)
        return Response(
            {"tweet_id": str(tweet.id), "timestamp": int(tweet.created_at.timestamp())},
            status=status.HTTP_201_CREATED,
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
