"""Baselines the benchmark measures the home timeline against, on the same server.

- ``PingApi``: an authenticated DRF endpoint doing nothing: the framework's ceiling.
- ``NaiveTimelineApi``: the design's alternative, fan-out on read in SQL: join the
  followees' tweets, order by id, take a page, every time, with no cache at all.
  Its tweets are the product's tweet objects (``tweets.objects``), built from the
  rows the query returns, so the two answers differ only in how they are found.
- ``BareInsertApi``: the posting endpoint's floor: the same authentication, one
  ``INSERT ... RETURNING`` of the text into a table of its own, committed
  (autocommit), and 201. No id minted, no rate limit, no fan-out, no cache.
"""
from django.db import connection
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.pagination import PageParams
from social.authentication import CachedUserJWTAuthentication
from social.models import Follow, User
from tweets import objects
from tweets.models import Tweet
from tweets.text import MAX_RAW_LENGTH

# The bare insert's table: made (and emptied) by ensure_bare_table when the bench starts; the bench app has
# no models, and no migration.
BARE_TABLE = "bench_bare_tweet"

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


def ensure_bare_table(cursor) -> None:
    """Create the bare insert's table if needed, empty."""
    cursor.execute(f"CREATE TABLE IF NOT EXISTS {BARE_TABLE} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                   "author_id bigint NOT NULL, content text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())")
    cursor.execute(f"TRUNCATE {BARE_TABLE}")


class _BareInsert(serializers.Serializer):
    content = serializers.CharField(max_length=MAX_RAW_LENGTH)


class BareInsertApi(APIView):
    authentication_classes = [CachedUserJWTAuthentication]

    @extend_schema(exclude=True)
    def post(self, request):
        body = _BareInsert(data=request.data)
        body.is_valid(raise_exception=True)
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {BARE_TABLE} (author_id, content) VALUES (%s, %s) RETURNING id",
                           [request.user.id, body.validated_data["content"]])
            (row_id,) = cursor.fetchone()
        return Response({"id": str(row_id)}, status=status.HTTP_201_CREATED)
