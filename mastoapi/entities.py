"""Mastodon's entities, each built in one place: Account, Status, MediaAttachment,
Relationship, Marker, Application, Token and the instance.

They are made from the product's own objects (a ``social.User``, a tweet's
``tweets.objects.TweetEntry``) and never from rows of their own, so a tweet
reads the same here as on ``/v1``. Times are ISO 8601 with milliseconds, as
Mastodon writes them. Ids are strings, as Mastodon's are.
``base`` is the server's own URL (``https://host``), for the links Mastodon
puts in its entities.
"""
import functools
import re
from collections.abc import Mapping
from datetime import datetime
from html import escape
from urllib.parse import urlsplit

import orjson
from django.conf import settings

from core.dates import iso_utc, iso_utc_from_unix
from media import services as media_services
from media.models import DESCRIPTION_MAX_LENGTH
from social.cache import CachedUser
from social.models import Follow, User
from tweets.objects import TweetEntry, fragment, media_base
from tweets.text import MAX_WEIGHTED_LENGTH, URL_WEIGHT, Entity, entities_with_indices

from . import scopes
from .models import Marker
from .oauth import GRANT_TYPES
from .usage import Usage


def mastodon_time(moment: datetime | float) -> str:
    """A time as Mastodon writes it: ISO 8601 in UTC with milliseconds (``moment`` a
    timezone-aware datetime, or Unix seconds)."""
    if isinstance(moment, datetime):
        return iso_utc(moment, timespec="milliseconds")
    return iso_utc_from_unix(moment, timespec="milliseconds")


# How many texts (parsed and rendered) and authors' Accounts a process remembers: the
# tweets and authors of a few pages of every active reader's timeline. Full, they hold
# about 6 MiB a process (measured with tracemalloc: texts of 90 characters, and Accounts).
_REMEMBERED = 4096
_REMEMBERED_ACCOUNTS = 2048


def account(user: User, *, base: str, statuses_count: int = 0, source: bool = False) -> dict:
    entity = _account(user_id=user.id, username=user.username, display_name=user.display_name,
                      locked=user.is_private, joined=user.date_joined, followers=user.followers_count,
                      following=user.following_count, base=base, statuses_count=statuses_count)
    if source:
        entity["source"] = {"privacy": "private" if user.is_private else "public", "sensitive": False,
                            "language": "", "note": "", "fields": [], "follow_requests_count": 0,
                            "hide_collections": user.is_private, "discoverable": True, "indexable": False}
        entity["role"] = _EVERYONE
    return entity


def cached_account(user: CachedUser, *, base: str) -> dict:
    """The Account of a user as the author cache holds them (a status's author): the same
    entity ``account`` makes of the user's row. Remembered per process by the entry itself
    (every field it holds, its version included) and the base: an entry that changes in
    any way is another key, so nothing remembered is stale. Shared: never to be changed."""
    return _cached_account(user, base)


@functools.lru_cache(maxsize=_REMEMBERED_ACCOUNTS)
def _cached_account(user: CachedUser, base: str) -> dict:
    return _account(user_id=user.user_id, username=user.username, display_name=user.display_name,
                    locked=user.private, joined=user.joined, followers=user.followers, following=user.following,
                    base=base)


def _account(*, user_id: int, username: str, display_name: str, locked: bool, joined: datetime, followers: int,
             following: int, base: str, statuses_count: int = 0) -> dict:
    url = f"{base}/@{username}"
    return {
        "id": str(user_id),
        "username": username,
        "acct": username,
        "display_name": display_name,
        "locked": locked,
        "bot": False,
        "discoverable": True,
        # No search engine or full-text search indexes anyone here.
        "indexable": False,
        "group": False,
        "created_at": mastodon_time(joined.replace(hour=0, minute=0, second=0, microsecond=0)),
        "note": "",
        "url": url,
        "uri": f"{base}/users/{username}",
        # No profile images here: Mastodon's placeholders, served at these paths by no one.
        "avatar": f"{base}/avatars/original/missing.png",
        "avatar_static": f"{base}/avatars/original/missing.png",
        "header": f"{base}/headers/original/missing.png",
        "header_static": f"{base}/headers/original/missing.png",
        "followers_count": followers,
        "following_count": following,
        "statuses_count": statuses_count,
        "last_status_at": None,
        "emojis": [],
        "fields": [],
        # A private account's follower and following lists are shown to its followers only.
        "hide_collections": locked,
        "roles": [],
    }


# Mastodon's role of an account with no role: "everyone", with no permissions.
_EVERYONE = {"id": "-99", "name": "", "color": "", "permissions": "0", "highlighted": False}


def content_html(text: str, *, base: str, mentioned: Mapping[str, User | CachedUser], tags: set[str]) -> str:
    """The tweet as Mastodon's sanitised HTML: escaped, with its URLs, the mentions of users
    in ``mentioned`` (by lower-cased name) and its hashtags in ``tags`` (casefolded) linked
    where ``tweets.text`` finds them; paragraphs in ``<p>``, line breaks as ``<br />``.

    A pure function of what it is given, remembered per process (``_parsed``, ``_rendered``):
    the text's entities by the text alone, and the HTML by the text, the base, the name each
    mention links to (or none) and which hashtags link. A rename, a suspension or another
    host changes that key, so nothing remembered is ever stale and nothing needs clearing."""
    parsed = _parsed(text)
    links: list[str | bool | None] = []
    for entity in parsed:
        if entity.kind == "mention":
            user = mentioned.get(entity.value.lower())
            links.append(None if user is None else user.username)
        elif entity.kind == "hashtag":
            links.append(entity.value.casefold() in tags)
        else:
            links.append(True)
    return _rendered(text, base, tuple(links))


@functools.lru_cache(maxsize=_REMEMBERED)
def _parsed(text: str) -> tuple[Entity, ...]:
    return tuple(entities_with_indices(text))


@functools.lru_cache(maxsize=_REMEMBERED)
def _rendered(text: str, base: str, links: tuple[str | bool | None, ...]) -> str:
    """The HTML of ``text``, each of its entities (``_parsed``) linked as ``links`` says: a
    mention to that username (None: left as text), a hashtag if True, a URL always."""
    parts, last = [], 0
    for entity, link in zip(_parsed(text), links, strict=True):
        html = _link(entity, base=base, link=link)
        if html is None:
            continue
        parts.append(escape(text[last:entity.start]))
        parts.append(html)
        last = entity.end
    parts.append(escape(text[last:]))
    html = "".join(parts)
    paragraphs = [p for p in re.split(r"\n\s*\n", html) if p.strip()] or [""]
    return "".join(f"<p>{p.strip(chr(10)).replace(chr(10), '<br />')}</p>" for p in paragraphs)


def _link(entity: Entity, *, base: str, link: str | bool | None) -> str | None:
    """The HTML link for ``entity``; None to leave it as text (a user not found, a tag not stored)."""
    if entity.kind == "url":
        href = entity.value if "://" in entity.value else f"http://{entity.value}"
        return f'<a href="{escape(href)}" rel="nofollow noopener" target="_blank">{escape(entity.value)}</a>'
    if not link:
        return None
    if entity.kind == "mention":
        return (f'<span class="h-card"><a href="{base}/@{link}" class="u-url mention">'
                f'@<span>{escape(str(link))}</span></a></span>')
    return (f'<a href="{base}/tags/{escape(entity.value.lower())}" class="mention hashtag" rel="tag">'
            f'#<span>{escape(entity.value)}</span></a>')


def media_attachment(media_id: str, url: str, content_type: str, *, description: str = "",
                     focus: tuple[float, float] | None = None) -> dict:
    """A MediaAttachment: ``description`` is its alt text (none: null), ``focus`` the point
    a cropped preview keeps in view (``meta.focus``)."""
    return {
        "id": media_id,
        "type": "video" if content_type.startswith("video/") else "image",
        "url": url,
        "preview_url": url,
        "remote_url": None,
        "preview_remote_url": None,
        "text_url": None,
        "meta": {"focus": {"x": focus[0], "y": focus[1]}} if focus is not None else {},
        "description": description or None,
        "blurhash": None,
    }


def statuses(tweets: list[TweetEntry], *, authors: Mapping[int, CachedUser], base: str,
             mentioned: Mapping[str, CachedUser]) -> list[dict]:
    """The Statuses of ``tweets`` whose authors are in ``authors`` (by id), in order."""
    return [status(tweet, author=authors[tweet.author.user_id], base=base, mentioned=mentioned)
            for tweet in tweets if tweet.author.user_id in authors]


def statuses_json(tweets: list[TweetEntry], *, authors: Mapping[int, CachedUser], base: str,
                  mentioned: Mapping[str, CachedUser]) -> list[orjson.Fragment]:
    """``statuses``, each already encoded (``status_json``): for a response that only shows them."""
    return [status_json(tweet, author=authors[tweet.author.user_id], base=base, mentioned=mentioned)
            for tweet in tweets if tweet.author.user_id in authors]


def status_json(tweet: TweetEntry, *, author: CachedUser, base: str,
                mentioned: Mapping[str, CachedUser]) -> orjson.Fragment:
    """``status`` encoded, as a fragment orjson copies into a response as it is. Remembered per
    process by everything the Status is made of: the entry, its author's cache entry, the base,
    the user each name it could link is (or None) and, for public media, the URL they lie under.
    A private or suspended author's media are signed at every showing: encoded afresh
    (``tweets.objects.media_base``)."""
    media = media_base(tweet)
    if media is None:
        return fragment(status(tweet, author=author, base=base, mentioned=mentioned))
    names = _names(tweet)
    return _status_encoded(tweet, author, base, names, tuple(mentioned.get(name) for name in names), media)


def _names(tweet: TweetEntry) -> tuple[str, ...]:
    """The lower-cased names a Status of ``tweet`` looks up: its mentions, and those its text links."""
    linked = (entity.value.lower() for entity in _parsed(tweet.content) if entity.kind == "mention")
    return tuple(dict.fromkeys([*(name.lower() for name in tweet.mentions), *linked]))


@functools.lru_cache(maxsize=_REMEMBERED)
def _status_encoded(tweet: TweetEntry, author: CachedUser, base: str, names: tuple[str, ...],
                    users: tuple[CachedUser | None, ...], media_base: str) -> orjson.Fragment:
    """The encoded Status of ``tweet`` whose names are ``users`` (and whose media, if any, are public
    under ``media_base``)."""
    mentioned = {name: user for name, user in zip(names, users, strict=True) if user is not None}
    return fragment(status(tweet, author=author, base=base, mentioned=mentioned))


def status(tweet: TweetEntry, *, author: CachedUser, base: str, mentioned: Mapping[str, CachedUser]) -> dict:
    """A Status from a tweet's entry, its author and the users it mentions (by lower-cased
    username; those not found are left unlinked)."""
    tweet_id = str(tweet.tweet_id)
    mentions = [mentioned[name.lower()] for name in tweet.mentions if name.lower() in mentioned]
    tags = {tag.casefold() for tag in tweet.hashtags}
    return {
        "id": tweet_id,
        "created_at": mastodon_time(tweet.created_at),
        "in_reply_to_id": None,
        "in_reply_to_account_id": None,
        "sensitive": False,
        "spoiler_text": "",
        "visibility": "private" if author.private else "public",
        "language": None,
        "uri": f"{base}/users/{author.username}/statuses/{tweet_id}",
        "url": f"{base}/@{author.username}/{tweet_id}",
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": 0,
        "edited_at": None,
        "favourited": False,
        "reblogged": False,
        "muted": False,
        "bookmarked": False,
        "pinned": False,
        "content": content_html(tweet.content, base=base, mentioned=mentioned, tags=tags),
        "filtered": [],
        "reblog": None,
        "text": None,
        "account": cached_account(author, base=base),
        "media_attachments": [media_attachment(m.media_id, m.url_for(tweet.author), m.content_type,
                                               description=m.description, focus=m.focus)
                              for m in tweet.media],
        "mentions": [{"id": str(u.user_id), "username": u.username, "url": f"{base}/@{u.username}", "acct": u.username}
                     for u in mentions],
        "tags": [{"name": tag, "url": f"{base}/tags/{tag.lower()}"} for tag in tweet.hashtags],
        "emojis": [],
        "card": None,
        "poll": None,
    }


def relationship(user_id: int, *, outgoing: str | None, incoming: str | None) -> dict:
    """How the caller stands to ``user_id``: ``outgoing`` is the caller's follow state
    towards them (accepted or requested), ``incoming`` theirs towards the caller."""
    following = outgoing == Follow.State.ACCEPTED
    return {
        "id": str(user_id),
        "following": following,
        "showing_reblogs": following,
        "notifying": False,
        "languages": None,
        "followed_by": incoming == Follow.State.ACCEPTED,
        "blocking": False,
        "blocked_by": False,
        "muting": False,
        "muting_notifications": False,
        "requested": outgoing == Follow.State.REQUESTED,
        "requested_by": incoming == Follow.State.REQUESTED,
        "domain_blocking": False,
        "endorsed": False,
        "note": "",
    }


def marker(row: Marker) -> dict:
    return {"last_read_id": str(row.last_read_id), "version": row.version, "updated_at": mastodon_time(row.updated_at)}


def application(app, *, scopes: list[str], website: str, client_secret: str | None = None) -> dict:
    uris = app.redirect_uris.split()
    entity = {
        "id": str(app.id),
        "name": app.name,
        "website": website or None,
        "scopes": scopes,
        "redirect_uri": "\n".join(uris),
        "redirect_uris": uris,
        "client_id": app.client_id,
        "vapid_key": "",
    }
    if client_secret is not None:
        entity["client_secret"] = client_secret
        entity["client_secret_expires_at"] = 0
    return entity


def token(body: dict) -> dict:
    """The Token entity from django-oauth-toolkit's token response, with its refresh token when
    it issued one (an OAuth client may use it; Mastodon's clients ignore it)."""
    entity = {"access_token": body["access_token"], "token_type": "Bearer", "scope": body.get("scope", ""),
              "created_at": int(datetime.now().timestamp())}
    if body.get("refresh_token"):
        entity["refresh_token"] = body["refresh_token"]
    return entity


def _media_configuration() -> dict:
    image = max(limit for t, (limit, _) in media_services.ALLOWED_TYPES.items() if t.startswith("image/"))
    video = max(limit for t, (limit, _) in media_services.ALLOWED_TYPES.items() if t.startswith("video/"))
    return {"supported_mime_types": list(media_services.ALLOWED_TYPES), "image_size_limit": image,
            "image_matrix_limit": 16777216, "video_size_limit": video, "video_frame_rate_limit": 60,
            "video_matrix_limit": 8294400, "description_limit": DESCRIPTION_MAX_LENGTH}


def _statuses_configuration() -> dict:
    return {"max_characters": MAX_WEIGHTED_LENGTH, "max_media_attachments": media_services.MAX_MEDIA_PER_TWEET,
            "characters_reserved_per_url": URL_WEIGHT}


# There are no polls here.
_POLLS = {"max_options": 0, "max_characters_per_option": 0, "min_expiration": 0, "max_expiration": 0}


def _streaming(base: str) -> str:
    """Where the stream process answers (``STREAMING_API_URL``; unset: this host on ``STREAM_PORT``)."""
    if settings.STREAMING_API_URL:
        return settings.STREAMING_API_URL.rstrip("/")
    parts = urlsplit(base)
    host = parts.hostname or "localhost"
    host = f"[{host}]" if ":" in host else host
    return f"{'wss' if parts.scheme == 'https' else 'ws'}://{host}:{settings.STREAM_PORT}"


_DESCRIPTION = "A home timeline that scrolls to the very first post (Mastodon-compatible client API)."


def instance_v1(*, base: str, domain: str, usage: Usage) -> dict:
    return {
        "uri": domain,
        "title": "Home Timeline",
        "short_description": _DESCRIPTION,
        "description": _DESCRIPTION,
        "email": "",
        "version": settings.MASTODON_VERSION,
        "urls": {"streaming_api": _streaming(base)},
        "stats": {"user_count": usage.users, "status_count": usage.posts, "domain_count": 1},
        "thumbnail": None,
        "languages": ["en"],
        # Anyone may sign up (POST /v1/auth/register), and is not reviewed first.
        "registrations": True,
        "approval_required": False,
        "invites_enabled": False,
        "configuration": {"statuses": _statuses_configuration(), "media_attachments": _media_configuration(),
                          "accounts": {"max_featured_tags": 0}, "polls": _POLLS},
        "contact_account": None,
        "rules": [],
    }


def instance_v2(*, base: str, domain: str, usage: Usage) -> dict:
    return {
        "domain": domain,
        "title": "Home Timeline",
        "version": settings.MASTODON_VERSION,
        "source_url": "",
        "description": _DESCRIPTION,
        "usage": {"users": {"active_month": usage.active_month}},
        "thumbnail": {"url": ""},
        "languages": ["en"],
        "icon": [],
        "configuration": {
            "urls": {"streaming": _streaming(base), "status": None},
            "accounts": {"max_featured_tags": 0, "max_pinned_statuses": 0},
            "statuses": _statuses_configuration(),
            "media_attachments": _media_configuration(),
            "polls": _POLLS,
            "translation": {"enabled": False},
        },
        "registrations": {"enabled": True, "approval_required": False, "message": None, "url": None},
        "api_versions": {"mastodon": 2},
        "contact": {"email": "", "account": None},
        "rules": [],
    }


def oauth_metadata(*, base: str) -> dict:
    """The OAuth server's metadata (RFC 8414) with the fields Mastodon 4.3 serves, which
    web apps read to find where to register and sign in (``app_registration_endpoint`` is
    Mastodon's name for ``POST /api/v1/apps``: not RFC 7591's dynamic registration)."""
    return {
        "issuer": f"{base}/",
        "service_documentation": "https://docs.joinmastodon.org/",
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "app_registration_endpoint": f"{base}/api/v1/apps",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "scopes_supported": list(scopes.ALL),
        "response_types_supported": ["code"],
        # The code comes back in the redirect's query (or on the out-of-band page).
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": list(GRANT_TYPES),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }


NODEINFO_SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/2.0"


def nodeinfo_links(*, base: str) -> dict:
    """``/.well-known/nodeinfo``: where the NodeInfo 2.0 document is."""
    return {"links": [{"rel": NODEINFO_SCHEMA, "href": f"{base}/nodeinfo/2.0"}]}


def nodeinfo(*, usage: Usage) -> dict:
    """The NodeInfo 2.0 document. The software is named as what it is; ``metadata.upstream``
    says whose client API it speaks (Mastodon's), which is how client libraries that pick
    an API by the software's name (megalodon's ``detector``) know to speak Mastodon's to
    a server that is not Mastodon. No protocols: this server does not federate."""
    return {
        "version": "2.0",
        "software": {"name": settings.SOFTWARE_NAME, "version": settings.SOFTWARE_VERSION},
        "protocols": [],
        "services": {"outbound": [], "inbound": []},
        "openRegistrations": True,
        "usage": {"users": {"total": usage.users, "activeMonth": usage.active_month,
                            "activeHalfyear": usage.active_halfyear},
                  "localPosts": usage.posts},
        "metadata": {"upstream": {"name": "mastodon", "version": _mastodon_version()}},
    }


def _mastodon_version() -> str:
    return settings.MASTODON_VERSION.split(" ")[0]
