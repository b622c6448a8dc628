from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import transaction

from . import cache
from .models import Follow, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["id", "username", "display_name", "is_active", "is_private", "followers_count", "following_count"]
    search_fields = ["username", "display_name"]
    readonly_fields = ["followers_count", "following_count", "last_tweet_id"]
    fieldsets = DjangoUserAdmin.fieldsets + (
        ("Profile", {"fields": ("display_name", "is_private", "followers_count", "following_count")}),
    )

    def save_model(self, request, obj, form, change):
        # Suspending (is_active off) or renaming must show in timelines at once.
        super().save_model(request, obj, form, change)
        transaction.on_commit(lambda: cache.refresh(obj))

    def has_delete_permission(self, request, obj=None):
        return False  # suspend (untick "active") instead: tweets are permanent and counts must stay exact


@admin.register(Follow)
class FollowAdmin(admin.ModelAdmin):
    """Read-only: follows change through the API's services, which keep counts and timelines right."""

    list_display = ["follower", "followee", "state", "created_at"]
    list_filter = ["state"]
    raw_id_fields = ["follower", "followee"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
