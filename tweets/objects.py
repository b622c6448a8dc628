"""The tweet, defined once: ``TweetEntry``, from which its cached form (``pack``) and its
public form (``to_public``) derive, and the Mastodon Status too (``mastoapi.entities``); the
public form's type, the ``PublicTweet`` TypedDicts, is also its OpenAPI description
(``TweetSchema``).

An entry is the tweet with its author's summary (name, whether active or
private), so a page is hydrated from the tweet cache alone, in one round trip.
Every change to an author rewrites their summary and drops their tweets'
entries (``tweets.receivers``), so a renamed user never shows under an old name
for long, nor a suspended one's tweets at all. An entry keeps each medium's
storage name, never its URL: the URL is made when the tweet is shown, from the
author's summary the entry carries (no other read): an active public author's
media at their public URL (``media.storage.public_url``), a private author's
through a short-lived signed URL (``media.storage.signed_url``), so a new
``MEDIA_CDN_URL`` applies to tweets cached before it. Every path that shows a tweet (the tweet endpoint, timeline
pages, the Mastodon API, the benchmark's baseline) goes through ``TweetEntry``.
"""
from __future__ import annotations

import functools
import typing
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, TypedDict

import orjson
from django.conf import settings
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from core.dates import iso_utc
from media import storage
from social.models import User

from . import snowflake
from .models import Tweet


@dataclass(frozen=True, slots=True)
class Author:
    """The author's summary an entry carries: enough to show the tweet and to decide who sees it."""

    user_id: int
    username: str
    display_name: str
    active: bool
    private: bool

    @classmethod
    def of(cls, user: User) -> Author:
        return cls(user_id=user.id, username=user.username, display_name=user.display_name,
                   active=user.is_active, private=user.is_private)

    @property
    def media_public(self) -> bool:
        """Whether the author's media are shown at their public URLs (else through URLs signed now)."""
        return self.active and not self.private


@dataclass(frozen=True, slots=True)
class Media:
    """An attached upload as the tweet stored it (``media.services.media_attach``)."""

    media_id: str
    key: str
    content_type: str
    description: str = ""
    focus: tuple[float, float] | None = None

    @classmethod
    def of(cls, stored: dict) -> Media:
        """The medium as a tweet's row stores it (``media_attach``'s dict)."""
        focus = stored.get("focus")
        return cls(media_id=stored["media_id"], key=stored["key"], content_type=stored["content_type"],
                   description=stored.get("description", ""), focus=(focus[0], focus[1]) if focus else None)

    def packed(self) -> list:
        """Its cached form: id, key and type, then the description and focus when it has them."""
        if not self.description and self.focus is None:
            return [self.media_id, self.key, self.content_type]
        return [self.media_id, self.key, self.content_type, self.description, *(self.focus or ())]

    @classmethod
    def unpacked(cls, packed: list) -> Media:
        media_id, key, content_type, *more = packed
        description = more[0] if more else ""
        focus = (more[1], more[2]) if len(more) >= 3 else None
        return cls(media_id=media_id, key=key, content_type=content_type, description=description, focus=focus)

    def url_for(self, author: Author) -> str:
        """Where readers fetch it, as configured now (under ``MEDIA_CDN_URL``): an active
        public author's at its public URL; a private (or suspended) author's, whose
        object is out of public reach (``media.services.media_place``), through a URL
        signed now, good for ``MEDIA_PRIVATE_URL_SECONDS``. Made locally, no request."""
        if author.media_public:
            return storage.public_url(self.key)
        return storage.signed_url(storage.key_of(self.key, "private"), expires_in=settings.MEDIA_PRIVATE_URL_SECONDS)


# --- The public object (``/v1``) and its OpenAPI component, from one declaration ---------

# Each field's annotation gives its JSON type; ``Annotated`` names the DRF field when a
# string has a format (an ISO 8601 time, a URL).
DateTime = Annotated[str, serializers.DateTimeField]
Url = Annotated[str, serializers.URLField]


class PublicTweetAuthor(TypedDict):
    user_id: str
    username: str
    display_name: str


class PublicTweetMedia(TypedDict):
    media_id: str
    url: Url
    content_type: str


class PublicTweet(TypedDict):
    tweet_id: str
    content: str
    created_at: DateTime
    timestamp: int
    author: PublicTweetAuthor
    media: list[PublicTweetMedia]
    mentions: list[str]
    hashtags: list[str]


@dataclass(frozen=True, slots=True)
class TweetEntry:
    """A live tweet as it is cached and shown: the tweet, its author's summary, its media.

    Its time is its id's (``snowflake.datetime_of``); ``pack``/``unpack`` are its
    cached form, ``to_public`` the API's tweet object.
    """

    tweet_id: int
    author: Author
    content: str
    media: tuple[Media, ...] = ()
    mentions: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()

    @classmethod
    def of(cls, tweet: Tweet) -> TweetEntry:
        """The entry for ``tweet`` (``tweet.author`` is read)."""
        return cls(
            tweet_id=tweet.id,
            author=Author.of(tweet.author),
            content=tweet.content,
            media=tuple(Media.of(m) for m in tweet.media),
            mentions=tuple(tweet.mentions),
            hashtags=tuple(tweet.hashtags),
        )

    @property
    def created_at(self) -> datetime:
        return snowflake.datetime_of(self.tweet_id)

    @property
    def timestamp(self) -> int:
        """Unix seconds."""
        return snowflake.timestamp_ms_of(self.tweet_id) // 1000

    def pack(self) -> bytes:
        """The entry as the tweet cache stores it (``unpack`` reads it back): a JSON array,
        with no field names, nothing derived from the id (its time) and no trailing empty
        lists; a little over the text's own size."""
        author = self.author
        flags = (_ACTIVE if author.active else 0) | (_PRIVATE if author.private else 0)
        packed = [_PACKED, author.user_id, author.username, author.display_name, flags, self.content,
                  [m.packed() for m in self.media], self.mentions, self.hashtags]
        while len(packed) > _FIXED and not packed[-1]:  # only the lists may be left off, never a blank field
            packed.pop()
        return orjson.dumps(packed)

    @classmethod
    def unpack(cls, tweet_id: int, raw: bytes) -> TweetEntry | None:
        """The entry ``pack`` stored for ``tweet_id``; None if it is not in this layout."""
        packed = orjson.loads(raw)
        if not isinstance(packed, list) or not packed or packed[0] != _PACKED:
            return None
        _, author_id, username, display_name, flags, content, *lists = packed
        media, mentions, hashtags = (*lists, [], [], [])[:3]
        return cls(
            tweet_id=tweet_id,
            author=Author(user_id=author_id, username=username, display_name=display_name,
                          active=bool(flags & _ACTIVE), private=bool(flags & _PRIVATE)),
            content=content,
            media=tuple(Media.unpacked(m) for m in media),
            mentions=tuple(mentions),
            hashtags=tuple(hashtags),
        )

    def to_public(self) -> PublicTweet:
        """The API's tweet object (``TweetSchema`` describes it); media URLs are made now."""
        author = self.author
        return {
            "tweet_id": str(self.tweet_id),
            "content": self.content,
            "created_at": iso_utc(self.created_at),
            "timestamp": self.timestamp,
            "author": {"user_id": str(author.user_id), "username": author.username,
                       "display_name": author.display_name},
            "media": [{"media_id": m.media_id, "url": m.url_for(author), "content_type": m.content_type}
                      for m in self.media],
            "mentions": list(self.mentions),
            "hashtags": list(self.hashtags),
        }


def media_base(entry: TweetEntry) -> str | None:
    """What the URLs of ``entry``'s media depend on when it is shown, for a caller that remembers
    a shown form of it: "" without media, the URL public media lie under for an author whose
    media are public (a new ``MEDIA_CDN_URL`` is another key), and None where they are signed at
    every showing (a private or suspended author's): such a shown form is not to be remembered."""
    if not entry.media:
        return ""
    return storage.public_base() if entry.author.media_public else None


def fragment(value) -> orjson.Fragment:
    """``value`` encoded, for orjson to copy into a response as it is: in bytes of its own size,
    as orjson's result keeps the 4 KiB buffer it was written in (a remembered one would hold it)."""
    return orjson.Fragment(bytes(memoryview(orjson.dumps(value))))


def public_json(entry: TweetEntry) -> orjson.Fragment:
    """``entry.to_public()`` encoded (``fragment``), kept per process by the entry and its
    ``media_base``; an entry whose media are signed is encoded afresh."""
    media = media_base(entry)
    return fragment(entry.to_public()) if media is None else _public_encoded(entry, media)


# Encoded public objects kept per process: those of a few hundred first pages.
PUBLIC_CACHED = 4096


@functools.lru_cache(maxsize=PUBLIC_CACHED)
def _public_encoded(entry: TweetEntry, media_base: str) -> orjson.Fragment:
    """The encoded public object of ``entry``, whose media (if any) are public under ``media_base``."""
    return fragment(entry.to_public())


# The entries of cached values this process read last (``unpacked``): an entry is immutable, and a cached
# value holds all of it, so the same bytes are the same entry. Both caches, full, hold about 6 MiB.
UNPACKED_CACHED = 4096


@functools.lru_cache(maxsize=UNPACKED_CACHED)
def unpacked(tweet_id: int, raw: bytes) -> TweetEntry | None:
    """``TweetEntry.unpack``, remembered per process for the values it read last."""
    return TweetEntry.unpack(tweet_id, raw)


# The packed layout's version, first in the array: anything else reads as a miss. Version 1
# held each medium's URL, this one (2) its key.
_PACKED = 2
_FIXED = 6  # the version and the fields before the lists
_ACTIVE, _PRIVATE = 1, 2


def _schema_field(annotation) -> serializers.Field:
    """The DRF field that describes a value of ``annotation`` (a ``Public*`` field's type)."""
    if typing.get_origin(annotation) is Annotated:
        return typing.get_args(annotation)[1]()
    if typing.get_origin(annotation) is list:
        return serializers.ListField(child=_schema_field(typing.get_args(annotation)[0]))
    if typing.is_typeddict(annotation):
        return _schema(annotation)
    return {str: serializers.CharField, int: serializers.IntegerField}[annotation]()


def _schema(typed: type) -> serializers.Serializer:
    """``typed`` as an OpenAPI component named after it, less its ``Public`` prefix."""
    hints = typing.get_type_hints(typed, include_extras=True)
    return inline_serializer(typed.__name__.removeprefix("Public"),
                             {name: _schema_field(hint) for name, hint in hints.items()})


# The public tweet object, described for the OpenAPI schema (documentation only):
# components Tweet, TweetAuthor and TweetMedia.
TweetSchema = _schema(PublicTweet)
