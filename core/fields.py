"""Serializer fields shared by the apps."""
from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A CharField that takes only JSON strings: ``123`` or ``true`` is a 400, not ``"123"``."""

    default_error_messages = {"invalid": "Must be a string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictRegexField(StrictCharField, serializers.RegexField):
    pass
