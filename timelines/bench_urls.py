"""The benchmark's baselines, mounted under /v1/bench/ only with BENCH_ENDPOINTS=1."""
from django.urls import path

from .bench_apis import NaiveTimelineApi, PingApi

urlpatterns = [
    path("ping", PingApi.as_view(), name="bench-ping"),
    path("naive-timeline", NaiveTimelineApi.as_view(), name="bench-naive-timeline"),
]
