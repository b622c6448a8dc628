"""Query parameters shared by every cursor-paginated list."""
from rest_framework import serializers

from .fields import MAX_ID, IdField

__all__ = ["MAX_ID", "IdField", "PageParams"]


class PageParams(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)
    cursor = IdField(required=False)

    def to_internal_value(self, data):
        # A query string may repeat a name (?limit=5&limit=7); each of these is one value,
        # so a repeat is a 400 rather than whichever value a parser happens to keep.
        if hasattr(data, "getlist"):
            repeated = {name: ["Give this parameter once."] for name in self.fields if len(data.getlist(name)) > 1}
            if repeated:
                raise serializers.ValidationError(repeated)
        return super().to_internal_value(data)
