from django.urls import path

from . import apis

urlpatterns = [
    path("media", apis.MediaCreateApi.as_view(), name="media-create"),
]
