from django.contrib import admin

from .models import Media


@admin.register(Media)
class MediaAdmin(admin.ModelAdmin):
    """Read-only: uploads are made through the API and swept by a periodic task."""

    list_display = ["id", "owner", "content_type", "size_bytes", "created_at", "tweet_id"]
    list_filter = ["content_type"]
    search_fields = ["=id", "owner__username", "=tweet_id"]
    raw_id_fields = ["owner"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
