"""The Mastodon routes. A route that serves two things names which (an instance
builder, a list selector, a request answer) as the view's ``as_view`` argument;
every view declares the methods it serves."""
import re

from django.urls import path, re_path

from social import selectors as social_selectors
from social import services as social_services

from . import apis, entities, views

# The HTML pages of the sign-in (and sign-up, and sign-out); Django's views, limited to the
# methods a browser uses.
_PAGE_METHODS = ["get", "post", "head", "options"]

urlpatterns = [
    path("api/v1/apps", apis.AppCreateApi.as_view(), name="masto-apps"),
    path("api/v1/apps/verify_credentials", apis.AppVerifyApi.as_view(), name="masto-app-verify"),
    path("oauth/token", apis.TokenApi.as_view(), name="masto-token"),
    path("oauth/revoke", apis.RevokeApi.as_view(), name="masto-revoke"),
    path("oauth/authorize", views.AuthorizeView.as_view(http_method_names=_PAGE_METHODS), name="masto-authorize"),
    # The same page, as some clients (the `toot` CLI) open it.
    path("oauth/authorize/", views.AuthorizeView.as_view(http_method_names=_PAGE_METHODS),
         name="masto-authorize-slash"),
    path("oauth/login", views.LoginView.as_view(http_method_names=_PAGE_METHODS), name="masto-login"),
    path("auth/sign_up", views.SignUpView.as_view(http_method_names=_PAGE_METHODS), name="masto-sign-up"),
    # Ends the browser's session with the sign-in pages (a POST with the page's CSRF token).
    path("auth/sign_out", views.SignOutView.as_view(), name="masto-sign-out"),
    re_path(r"^api/v1/instance/?$", apis.InstanceApi.as_view(build=entities.instance_v1), name="masto-instance"),
    re_path(r"^api/v2/instance/?$", apis.InstanceApi.as_view(build=entities.instance_v2), name="masto-instance-v2"),
    path("api/v1/accounts/verify_credentials", apis.VerifyCredentialsApi.as_view(), name="masto-verify"),
    path("api/v1/accounts/update_credentials", apis.UpdateCredentialsApi.as_view(), name="masto-update"),
    path("api/v1/accounts/relationships", apis.RelationshipsApi.as_view(), name="masto-relationships"),
    path("api/v1/accounts/lookup", apis.LookupApi.as_view(), name="masto-lookup"),
    path("api/v1/accounts/<id:account_id>", apis.AccountApi.as_view(), name="masto-account"),
    path("api/v1/accounts/<id:account_id>/follow", apis.FollowApi.as_view(), name="masto-follow"),
    path("api/v1/accounts/<id:account_id>/unfollow", apis.UnfollowApi.as_view(), name="masto-unfollow"),
    path("api/v1/accounts/<id:account_id>/remove_from_followers", apis.RemoveFromFollowersApi.as_view(),
         name="masto-remove-follower"),
    path("api/v1/accounts/<id:account_id>/followers",
         apis.AccountListApi.as_view(page=social_selectors.followers_page), name="masto-followers"),
    path("api/v1/accounts/<id:account_id>/following",
         apis.AccountListApi.as_view(page=social_selectors.following_page), name="masto-following"),
    path("api/v1/accounts/<id:account_id>/statuses", apis.AccountStatusesApi.as_view(), name="masto-statuses-of"),
    path("api/v1/follow_requests", apis.FollowRequestsApi.as_view(), name="masto-follow-requests"),
    path("api/v1/follow_requests/<id:account_id>/authorize",
         apis.FollowRequestAnswerApi.as_view(act=social_services.follow_request_approve),
         name="masto-follow-authorize"),
    path("api/v1/follow_requests/<id:account_id>/reject",
         apis.FollowRequestAnswerApi.as_view(act=social_services.follow_request_reject),
         name="masto-follow-reject"),
    path("api/v1/statuses", apis.StatusCreateApi.as_view(), name="masto-status-create"),
    path("api/v1/statuses/<id:status_id>", apis.StatusApi.as_view(), name="masto-status"),
    path("api/v2/media", apis.MediaCreateApi.as_view(), name="masto-media"),
    path("api/v1/media", apis.MediaCreateApi.as_view(), name="masto-media-v1"),
    path("api/v1/media/<id:media_id>", apis.MediaApi.as_view(), name="masto-media-one"),
    # Discovery: what web apps read before anything else (CORS lets any origin read them).
    path(".well-known/oauth-authorization-server", apis.PublicDocumentApi.as_view(build=entities.oauth_metadata),
         name="masto-oauth-metadata"),
    path(".well-known/nodeinfo", apis.PublicDocumentApi.as_view(build=entities.nodeinfo_links),
         name="nodeinfo-links"),
    path("nodeinfo/2.0", apis.NodeInfoApi.as_view(), name="nodeinfo"),
    path("api/v1/timelines/home", apis.HomeTimelineApi.as_view(), name="masto-home"),
    path("api/v1/markers", apis.MarkersApi.as_view(), name="masto-markers"),
    path("api/v1/statuses/<id:status_id>/context", apis.StatusContextApi.as_view(), name="masto-status-context"),
    path("api/v1/preferences", apis.PreferencesApi.as_view(), name="masto-preferences"),
    path("api/v1/custom_emojis", apis.CustomEmojisApi.as_view(), name="masto-custom-emojis"),
    # Things this server has none of: empty lists, so clients that load them at start work.
    *(path(f"api/{route}", apis.NothingHereApi.as_view(), name="masto-none-" + re.sub(r"\W+", "-", route))
      for route in (
        "v1/notifications", "v1/lists", "v1/filters", "v2/filters", "v1/announcements", "v1/followed_tags",
        "v1/conversations", "v1/bookmarks", "v1/favourites", "v1/blocks", "v1/mutes", "v1/domain_blocks",
        "v1/accounts/<id:account_id>/featured_tags", "v1/accounts/<id:account_id>/lists")),
    # Last: any other path under /api/ is Mastodon's 404 rather than the project's.
    re_path(r"^api/", apis.NoRouteApi.as_view(), name="masto-no-route"),
]
