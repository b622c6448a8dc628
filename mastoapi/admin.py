"""django-oauth-toolkit's admin pages (apps, access and refresh tokens, grants), for superusers alone.

They hold other people's credentials: a staff member given their permissions could
hand themselves another user's token, or read an app's secret hash. Moderation
(the ``moderator`` group) needs none of them, so whatever permissions a staff
account is given, only a superuser sees or changes these pages.
"""
from django.contrib import admin
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_id_token_model,
    get_refresh_token_model,
)


class SuperuserOnlyAdmin:
    """Mixed into a registered ``ModelAdmin``: what it allows, to a superuser only."""

    def has_module_permission(self, request) -> bool:
        return request.user.is_superuser and super().has_module_permission(request)  # type: ignore[misc]

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser and super().has_view_permission(request, obj)  # type: ignore[misc]

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser and super().has_add_permission(request)  # type: ignore[misc]

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser and super().has_delete_permission(request, obj)  # type: ignore[misc]


# oauth2_provider's admin module registered these first (it comes before this app in INSTALLED_APPS).
for _model in (get_application_model(), get_access_token_model(), get_refresh_token_model(), get_grant_model(),
               get_id_token_model()):
    _registered = type(admin.site._registry[_model])
    admin.site.unregister(_model)
    admin.site.register(_model, type(_registered.__name__, (SuperuserOnlyAdmin, _registered), {}))
