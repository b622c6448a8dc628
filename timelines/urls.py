from django.urls import path

from . import apis

urlpatterns = [
    path("timeline/home", apis.HomeTimelineApi.as_view(), name="timeline-home"),
]
