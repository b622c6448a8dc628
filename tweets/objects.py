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
import orjson
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
        "created_at": _iso(tweet.created_at),
        "timestamp": snowflake.timestamp_ms_of(tweet.id) // 1000,
        "media": [
            {"media_id": m["media_id"], "url": storage.public_url(m["key"]), "content_type": m["content_type"]}
            for m in tweet.media
        ],
        "mentions": list(tweet.mentions),
        "hashtags": list(tweet.hashtags),
    }


# The cached entry as stored: a JSON array, with no field names, nothing derived from
# the id (its time) and no trailing empty lists; a little over the text's own size.
_PACKED = 1  # the layout's version, first in the array: anything else reads as a miss
_ACTIVE, _PRIVATE = 1, 2


def pack(entry: dict) -> bytes:
    """A cached entry as the tweet cache stores it (``unpack`` reads it back)."""
    author = entry["author"]
    flags = (_ACTIVE if author["active"] else 0) | (_PRIVATE if author["private"] else 0)
    media = [[m["media_id"], m["url"], m["content_type"]] for m in entry["media"]]
    packed = [_PACKED, entry["author_id"], author["username"], author["display_name"], flags, entry["content"],
              media, entry["mentions"], entry["hashtags"]]
    while not packed[-1]:
        packed.pop()
    return orjson.dumps(packed)


def unpack(tweet_id: int, raw: bytes) -> dict | None:
    """The cached entry ``pack`` stored for ``tweet_id``; None if it is not in this layout."""
    packed = orjson.loads(raw)
    if not isinstance(packed, list) or not packed or packed[0] != _PACKED:
        return None
    _, author_id, username, display_name, flags, content, *lists = packed
    media, mentions, hashtags = (*lists, [], [], [])[:3]
    ms = snowflake.timestamp_ms_of(tweet_id)
    return {
        "tweet_id": str(tweet_id),
        "author_id": author_id,
        "author": {"user_id": str(author_id), "username": username, "display_name": display_name,
                   "active": bool(flags & _ACTIVE), "private": bool(flags & _PRIVATE)},
        "content": content,
        "created_at": _iso(snowflake.datetime_of(tweet_id)),
        "timestamp": ms // 1000,
        "media": [{"media_id": m[0], "url": m[1], "content_type": m[2]} for m in media],
        "mentions": mentions,
        "hashtags": hashtags,
    }


def _iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


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
