"""The tweet object, defined once: its cached form, its public form and its OpenAPI description.

A cached entry is the tweet with its author's summary (``social.cache``'s: name,
whether active or private), so a page is hydrated from the tweet cache alone,
in one round trip. Every change to an author rewrites their summary and drops
their tweets' entries (``tweets.receivers``), so a renamed user never shows
under an old name for long, nor a suspended one's tweets at all. The public
object is the entry's public fields. Every path that shows a tweet (the tweet
endpoint, timeline pages, the benchmark's baseline) builds it with these two
functions.
"""
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from media import storage
from social.cache import author_summary

from . import snowflake
from .models import Tweet


def cached_entry(tweet: Tweet) -> dict:
    """What the tweet cache holds for ``tweet``, its author's summary included (``tweet.author`` is read)."""
    return {
        "tweet_id": str(tweet.id),
        "author_id": tweet.author_id,
        "author": author_summary(tweet.author),
        "content": tweet.content,
        "created_at": tweet.created_at.isoformat().replace("+00:00", "Z"),
        "timestamp": snowflake.timestamp_ms_of(tweet.id) // 1000,
        "media": [
            {"media_id": m["media_id"], "url": storage.public_url(m["key"]), "content_type": m["content_type"]}
            for m in tweet.media
        ],
        "mentions": list(tweet.mentions),
        "hashtags": list(tweet.hashtags),
    }


def public(entry: dict) -> dict:
    """The API's tweet object: a cached entry's public fields."""
    author = entry["author"]
    return {
        "tweet_id": entry["tweet_id"],
        "content": entry["content"],
        "created_at": entry["created_at"],
        "timestamp": entry["timestamp"],
        "author": {
            "user_id": author["user_id"],
            "username": author["username"],
            "display_name": author["display_name"],
        },
        "media": entry["media"],
        "mentions": entry["mentions"],
        "hashtags": entry["hashtags"],
    }


# The same object, described for the OpenAPI schema (documentation only).
TweetSchema = inline_serializer("Tweet", {
    "tweet_id": serializers.CharField(),
    "content": serializers.CharField(),
    "created_at": serializers.DateTimeField(),
    "timestamp": serializers.IntegerField(),
    "author": inline_serializer("TweetAuthor", {
        "user_id": serializers.CharField(),
        "username": serializers.CharField(),
        "display_name": serializers.CharField(),
    }),
    "media": serializers.ListField(child=inline_serializer("TweetMedia", {
        "media_id": serializers.CharField(),
        "url": serializers.URLField(),
        "content_type": serializers.CharField(),
    })),
    "mentions": serializers.ListField(child=serializers.CharField()),
    "hashtags": serializers.ListField(child=serializers.CharField()),
})
