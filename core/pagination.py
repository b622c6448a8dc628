"""Query parameters shared by every cursor-paginated list."""
from rest_framework import serializers

from .fields import MAX_ID, IdField

__all__ = ["MAX_ID", "IdField", "PageParams"]


class PageParams(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)
    cursor = IdField(required=False)
