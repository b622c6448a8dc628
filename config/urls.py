from django.contrib import admin
from django.urls import include, path, re_path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config import admin_login
from core import health, metrics
from core.converters import IdConverter
from mastoapi import direct_uploads, sessions
from media import storage as media_storage

register_converter(IdConverter, "id")

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, {"checks": {"s3": media_storage.ping}}, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/login/", admin_login.login, name="admin-login"),  # admin's own, counted against the login limit
    path("admin/", admin.site.urls),
    path("v1/schema", SpectacularAPIView.as_view(), name="schema"),
    # A page to look at: any other method is a 405 (DRF's OPTIONS would render its metadata through
    # the page's HTML renderer, which has no template for it).
    path("v1/docs", SpectacularSwaggerView.as_view(url_name="schema", http_method_names=["get", "head"]), name="docs"),
    path("v1/", include("social.urls")),
    # A user's sessions cover both token stores, the OAuth one the Mastodon layer's: mastoapi/sessions.py.
    path("v1/auth/sessions", sessions.SessionsApi.as_view(), name="sessions"),
    re_path(rf"^v1/auth/sessions/(?P<session_id>{sessions.SESSION_ID_PATTERN})$", sessions.SessionApi.as_view(),
            name="session"),
    path("v1/", include("tweets.urls")),
    path("v1/", include("timelines.urls")),
    # Presigned uploads, for /v1 JWTs and OAuth tokens alike (the web client's): mastoapi/direct_uploads.py.
    path("v1/media", direct_uploads.PresignedMediaApi.as_view(), name="media-create"),
    # The Mastodon-compatible client API (/api/v1, /api/v2, /oauth): docs/subsystems/mastodon-api.md.
    path("", include("mastoapi.urls")),
    # The first-party web client: its page at / (and at its own routes), its modules under /static/web/.
    path("", include("web.urls")),
]

# Errors outside DRF's views (unknown URLs, crashes) answer JSON too.
handler404 = "core.health.not_found"
handler500 = "core.health.server_error"
