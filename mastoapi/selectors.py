"""Reads only the Mastodon API needs: an account's own statuses, its statuses count,
the users a page of statuses shows, and markers. The home timeline is not here: it
is ``timelines.selectors.timeline_page_for_user``, the same read as ``/v1``'s."""
from social import cache as author_cache
from social import selectors as social_selectors
from social.cache import CachedUser
from tweets import selectors as tweets_selectors
from tweets.objects import TweetEntry

from .models import Marker


def statuses_count(*, user_id: int) -> int:
    return tweets_selectors.statuses_count(author_id=user_id)


def account_statuses(*, viewer_id: int, account_id: int, limit: int, max_id: int | None = None,
                     since_id: int | None = None, min_id: int | None = None) -> list[TweetEntry]:
    """The account's own tweets, newest first: all of them to the account and (if it is
    private) its accepted followers, none to anyone else; ``NotFound`` for an account
    suspended or unknown. ``max_id``/``since_id``/``min_id`` as on the home timeline."""
    social_selectors.user_get(user_id=account_id)
    return tweets_selectors.author_tweets_page(viewer_id=viewer_id, author_id=account_id, limit=limit,
                                               max_id=max_id, since_id=since_id, min_id=min_id)


def users_of(tweets: list[TweetEntry]) -> tuple[dict[int, CachedUser], dict[str, CachedUser]]:
    """The authors of ``tweets`` by id and the active users they mention by lower-cased
    name, from the author cache (``social.cache``): no query for a warm page."""
    author_ids = sorted({t.author.user_id for t in tweets})
    names = {name.lower() for t in tweets for name in t.mentions}
    return author_cache.users_and_names(user_ids=author_ids, names=names)


def markers_of(*, user_id: int, timelines: list[str]) -> list[Marker]:
    return list(Marker.objects.filter(user_id=user_id, timeline__in=timelines))
