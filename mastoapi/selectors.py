"""Reads only the Mastodon API needs: an account's own statuses, its statuses count,
the users a page of statuses shows, and markers. The home timeline is not here: it
is ``timelines.selectors.timeline_page_for_user``, the same read as ``/v1``'s."""
from social import cache as author_cache
from social import selectors as social_selectors
from social.models import User
from tweets.models import Tweet
from tweets.selectors import tweets_hydrate

from .models import Marker


def statuses_count(*, user_id: int) -> int:
    return Tweet.objects.filter(author_id=user_id, deleted_at__isnull=True).count()


def account_statuses(*, viewer_id: int, account_id: int, limit: int, max_id: int | None = None,
                     since_id: int | None = None, min_id: int | None = None) -> list[dict]:
    """The account's own tweets, newest first, as public tweet objects: all of them to
    the account and (if it is private) its accepted followers, none to anyone else.
    ``max_id``/``since_id``/``min_id`` as on the home timeline."""
    user = social_selectors.user_get(user_id=account_id)
    if not social_selectors.may_see_graph_of(viewer_id=viewer_id, user=user):
        return []
    tweets = Tweet.objects.filter(author_id=account_id, deleted_at__isnull=True)
    if max_id is not None:
        tweets = tweets.filter(id__lt=max_id)
    if since_id is not None:
        tweets = tweets.filter(id__gt=since_id)
    if min_id is not None:
        ids = list(tweets.filter(id__gt=min_id).order_by("id").values_list("id", flat=True)[:limit])[::-1]
    else:
        ids = list(tweets.order_by("-id").values_list("id", flat=True)[:limit])
    return tweets_hydrate(tweet_ids=ids)


def users_of(tweets: list[dict]) -> tuple[dict[int, User], dict[str, User]]:
    """The authors of ``tweets`` by id and the active users they mention by lower-cased
    name, from the author cache (``social.cache``): no query for a warm page."""
    author_ids = sorted({int(t["author"]["user_id"]) for t in tweets})
    names = {name.lower() for t in tweets for name in t["mentions"]}
    return author_cache.users_and_names(user_ids=author_ids, names=names)


def markers_of(*, user_id: int, timelines: list[str]) -> list[Marker]:
    return list(Marker.objects.filter(user_id=user_id, timeline__in=timelines))
