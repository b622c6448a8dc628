"""Query parameters shared by every cursor-paginated list."""
import re

from rest_framework import serializers

from .fields import MAX_ID, IdField

__all__ = ["MAX_ID", "IdField", "PageParams"]

_PLAIN_NUMBER = re.compile(r"[1-9][0-9]{0,18}")


class PageParams(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)
    cursor = IdField(required=False)

    def to_internal_value(self, data):
        # A query string may repeat a name (?limit=5&limit=7); each of these is one value,
        # so a repeat is a 400 rather than whichever value a parser happens to keep.
        if hasattr(data, "getlist"):
            repeated = {name: ["Give this parameter once."]
                        for name in self.fields.keys() if len(data.getlist(name)) > 1}
            if repeated:
                raise serializers.ValidationError(repeated)
        return super().to_internal_value(data)

    @classmethod
    def parse(cls, query) -> dict:
        """The validated parameters of ``query`` (a 400 if they are not valid).

        A query whose values are plain numbers in range, as clients send them, is
        read without building the serializer (50 µs a request, most of it copying
        its fields); anything else, errors included, is the serializer's to answer.
        """
        values = cls._plain(query)
        if values is None:
            serializer = cls(data=query)
            serializer.is_valid(raise_exception=True)
            values = serializer.validated_data
        return values

    @classmethod
    def _plain(cls, query) -> dict | None:
        """What the serializer would validate ``query`` to, if it is in the plainest form; else None."""
        values = {}
        for name, field in cls._declared_fields.items():
            given = query.getlist(name)
            if not given:
                if field.default is not serializers.empty:
                    values[name] = field.default
                continue
            if len(given) > 1 or not _PLAIN_NUMBER.fullmatch(given[0]):
                return None
            value = int(given[0])
            if isinstance(field, IdField):
                in_range = value <= MAX_ID
            elif type(field) is serializers.IntegerField:
                in_range = ((field.min_value is None or value >= field.min_value)
                            and (field.max_value is None or value <= field.max_value))
            else:
                return None
            if not in_range:
                return None
            values[name] = value
        try:
            return cls().validate(values)
        except serializers.ValidationError:
            return None
