from django.contrib import admin, messages

from . import services
from .models import Tweet


@admin.register(Tweet)
class TweetAdmin(admin.ModelAdmin):
    list_display = ["id", "author", "content", "created_at", "deleted_at"]
    list_filter = ["deleted_at"]
    search_fields = ["id", "content", "author__username"]
    raw_id_fields = ["author"]
    readonly_fields = ["id", "author", "created_at", "mentions", "hashtags", "deleted_at"]
    actions = ["delete_for_moderation"]

    def has_add_permission(self, request):
        return False  # tweets are posted through the API

    def has_delete_permission(self, request, obj=None):
        return False  # tweets are soft-deleted through the moderation action

    @admin.action(description="Delete selected tweets (moderation)")
    def delete_for_moderation(self, request, queryset):
        deleted = 0
        for tweet in queryset.live():
            services.tweet_delete(tweet_id=tweet.id, actor=request.user)
            deleted += 1
        self.message_user(request, f"{deleted} tweet{'s' if deleted != 1 else ''} deleted.", messages.SUCCESS)
