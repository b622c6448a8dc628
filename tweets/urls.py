from django.urls import path

from . import apis

urlpatterns = [
    path("tweets", apis.TweetCreateApi.as_view(), name="tweet-create"),
    path("tweets/<id:tweet_id>", apis.TweetDetailApi.as_view(), name="tweet-detail"),
]
