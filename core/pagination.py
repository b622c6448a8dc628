"""Query parameters shared by every cursor-paginated list."""
from rest_framework import serializers

MAX_ID = (1 << 63) - 1


class IdField(serializers.CharField):
    """A 64-bit id given as a decimal string (ids are strings in JSON)."""

    default_error_messages = {"invalid": "Must be a positive integer id."}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not value.isascii() or not value.isdigit() or len(value) > 19 or not 0 < int(value) <= MAX_ID:
            self.fail("invalid")
        return int(value)


class PageParams(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)
    cursor = IdField(required=False)
