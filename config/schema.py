"""Response shapes for the OpenAPI schema (``/v1/schema``): documentation only, never used to build responses."""
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

Detail = inline_serializer("Detail", {"detail": serializers.CharField()})

TweetAuthor = inline_serializer("TweetAuthor", {
    "user_id": serializers.CharField(),
    "username": serializers.CharField(),
    "display_name": serializers.CharField(),
})

Tweet = inline_serializer("Tweet", {
    "tweet_id": serializers.CharField(),
    "content": serializers.CharField(),
    "created_at": serializers.DateTimeField(),
    "timestamp": serializers.IntegerField(),
    "author": TweetAuthor,
    "media": serializers.ListField(child=serializers.DictField()),
    "mentions": serializers.ListField(child=serializers.CharField()),
    "hashtags": serializers.ListField(child=serializers.CharField()),
})

TimelinePage = inline_serializer("TimelinePage", {
    "data": serializers.ListField(child=Tweet),
    "next_cursor": serializers.CharField(allow_null=True),
    "prev_cursor": serializers.CharField(allow_null=True),
})


def users_page(user_serializer):
    return inline_serializer("UserPage", {
        "data": user_serializer(many=True),
        "next_cursor": serializers.CharField(allow_null=True),
    })


Status = inline_serializer("Status", {"status": serializers.CharField()})


class SafeJWTScheme(SimpleJWTScheme):
    """Documents ``config.authentication.SafeJWTAuthentication`` as the bearer JWT scheme it is."""

    target_class = "config.authentication.SafeJWTAuthentication"


class CachedUserJWTScheme(SimpleJWTScheme):
    """The read views' ``CachedUserJWTAuthentication``: the same bearer token, checked against the author cache."""

    target_class = "config.authentication.CachedUserJWTAuthentication"
    name = "readerJwtAuth"

