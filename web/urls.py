from django.urls import path, re_path

from . import views

urlpatterns = [
    path("", views.index, name="web-home"),
    # A profile's address is the one its Mastodon Account names (``url``: /@username).
    re_path(r"^@(?P<username>[A-Za-z0-9_]{1,15})$", views.index, name="web-profile"),
    # A status's, the one its Status names (``url``: /@username/id).
    re_path(r"^@(?P<username>[A-Za-z0-9_]{1,15})/(?P<status_id>[0-9]{1,20})$", views.index, name="web-status"),
    path("follow_requests", views.index, name="web-follow-requests"),
    re_path(r"^web/counting-rules\.(?P<version>[0-9a-f]{12})\.json$", views.counting_rules, name="web-counting-rules"),
]
