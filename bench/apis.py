"""Baselines the benchmark measures the home timeline against, on the same server.

- ``PingApi``: an authenticated DRF endpoint doing nothing: the framework's ceiling.
- ``NaiveTimelineApi``: the design's alternative, fan-out on read in SQL: join the
  followees' tweets, order by id, take a page, every time, with no cache at all.
  Its tweets are the product's tweet objects (``tweets.objects``), built from the
  rows the query returns, so the two answers differ only in how they are found.
"""
from django.db import connection
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from core.pagination import PageParams
from social.authentication import CachedUserJWTAuthentication
from social.models import Follow, User
from tweets import objects
from tweets.models import Tweet

_NAIVE_SQL = f"""
SELECT t.id, t.author_id, t.content, t.created_at, t.mentions, t.hashtags, u.username, u.display_name
FROM {Tweet._meta.db_table} t JOIN {User._meta.db_table} u ON u.id = t.author_id
WHERE (t.author_id IN (SELECT followee_id FROM {Follow._meta.db_table}
                       WHERE follower_id = %(user_id)s AND state = %(accepted)s)
       OR t.author_id = %(user_id)s)
  AND t.deleted_at IS NULL AND u.is_active
ORDER BY t.id DESC
LIMIT %(limit)s
"""


def _tweet_object(row: tuple) -> dict:
    tweet_id, author_id, content, created_at, mentions, hashtags, username, display_name = row
    author = User(id=author_id, username=username, display_name=display_name, is_active=True)
    tweet = Tweet(id=tweet_id, author=author, content=content, created_at=created_at,
                  mentions=mentions, hashtags=hashtags)
    return objects.TweetEntry.of(tweet).to_public()


class PingApi(APIView):
    authentication_classes = [CachedUserJWTAuthentication]  # as the timeline: a fair ceiling

    @extend_schema(exclude=True)
    def get(self, request):
        return Response({"user_id": str(request.user.id)})


class NaiveTimelineApi(APIView):
    authentication_classes = [CachedUserJWTAuthentication]

    @extend_schema(exclude=True)
    def get(self, request):
        params = PageParams.parse(request.query_params)
        with connection.cursor() as cursor:
            cursor.execute(_NAIVE_SQL, {"user_id": request.user.id, "accepted": Follow.State.ACCEPTED,
                                        "limit": params["limit"]})
            data = [_tweet_object(row) for row in cursor.fetchall()]
        return Response({"data": data, "next_cursor": data[-1]["tweet_id"] if data else None,
                         "prev_cursor": data[0]["tweet_id"] if data else None})
