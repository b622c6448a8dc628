"""The bench settings' URLs: the product's, plus the baselines under /v1/bench/."""
from django.urls import include, path

from config.urls import handler404, handler500  # noqa: F401 - Django reads them from the root URLconf

from .apis import BareInsertApi, NaiveTimelineApi, PingApi

urlpatterns = [
    path("", include("config.urls")),
    path("v1/bench/ping", PingApi.as_view(), name="bench-ping"),
    path("v1/bench/naive-timeline", NaiveTimelineApi.as_view(), name="bench-naive-timeline"),
    path("v1/bench/bare-insert", BareInsertApi.as_view(), name="bench-bare-insert"),
]
