from django.contrib import admin

from core.admin import ReadOnlyAdmin

from .models import Media


@admin.register(Media)
class MediaAdmin(ReadOnlyAdmin):
    """Uploads are made through the API and swept by a periodic task."""

    list_display = ["id", "owner", "content_type", "size_bytes", "created_at", "tweet_id"]
    list_filter = ["content_type"]
    search_fields = ["=id", "owner__username", "=tweet_id"]
    raw_id_fields = ["owner"]

