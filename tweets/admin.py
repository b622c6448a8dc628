"""Tweets in the admin: shown, never edited; deleted only through ``services.tweet_delete``.

A tweet's row is what its caches and timelines were built from, so nothing on it
changes in the admin (a saved row would leave the cached copy stale). Deleting,
from the tweet's page or with the list's moderation action, is the service's
soft delete, which tombstones the cached tweet; it needs ``tweets.delete_tweet``
(the "moderator" group has it) and applies to live tweets only.
"""
from django.contrib import admin, messages

from core.admin import ReadOnlyAdmin
from core.exceptions import NotFound

from . import services
from .models import Tweet


@admin.register(Tweet)
class TweetAdmin(ReadOnlyAdmin):
    list_display = ["id", "author", "content", "created_at", "deleted_at"]
    list_filter = ["deleted_at"]
    search_fields = ["id", "content", "author__username"]
    raw_id_fields = ["author"]
    actions = ["delete_for_moderation"]

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_deleted:
            return False
        return admin.ModelAdmin.has_delete_permission(self, request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # the moderation action is the bulk delete
        return actions

    def get_deleted_objects(self, objs, request):
        # A soft delete: the tweet alone is marked, nothing related goes with it.
        return [str(obj) for obj in objs], {self.opts.verbose_name_plural: len(objs)}, set(), []

    def delete_model(self, request, obj):
        _delete(request, obj.id)

    def delete_queryset(self, request, queryset):
        for tweet_id in queryset.live().values_list("id", flat=True):
            _delete(request, tweet_id)

    @admin.action(description="Delete selected tweets (moderation)", permissions=["delete"])
    def delete_for_moderation(self, request, queryset):
        deleted = sum(_delete(request, tweet_id) for tweet_id in queryset.live().values_list("id", flat=True))
        self.message_user(request, f"{deleted} tweet{'s' if deleted != 1 else ''} deleted.", messages.SUCCESS)


def _delete(request, tweet_id: int) -> bool:
    """Delete through the service; False if the tweet went meanwhile (its author deleted it)."""
    try:
        services.tweet_delete(tweet_id=tweet_id, actor=request.user)
    except NotFound:
        return False
    return True
