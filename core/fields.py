"""Serializer fields shared by the apps, the one definition of an id's shape, and the
``Idempotency-Key`` header's."""
import re

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

MAX_ID = (1 << 63) - 1


def decimal_at_most(limit: int) -> str:
    """A regular expression for the decimal numbers 1 to ``limit`` without leading zeros
    (unanchored, for a URL converter; anchor it for an OpenAPI ``pattern``)."""
    digits = str(limit)
    alternatives = [f"[1-9][0-9]{{0,{len(digits) - 2}}}"] if len(digits) > 1 else []
    # As many digits as the limit: equal to it up to some position, then a smaller digit.
    for i, digit in enumerate(digits):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            rest = len(digits) - i - 1
            alternatives.append(f"{digits[:i]}[{low}-{int(digit) - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    alternatives.append(digits)
    return "(?:" + "|".join(alternatives) + ")"


# A 64-bit id as JSON, URLs and query strings carry it: a decimal string, 1 to 2**63 - 1.
ID_REGEX = decimal_at_most(MAX_ID)


# DRF refuses NUL in any text field (PostgreSQL cannot store it); the schema says so.
NO_NUL = r"^[^\x00]*$"


class StrictCharField(serializers.CharField):
    """A CharField that takes only JSON strings: ``123`` or ``true`` is a 400, not ``"123"``;
    its schema pattern says that NUL is refused too (drf-spectacular shows a RegexValidator
    as ``pattern``)."""

    default_error_messages = {"invalid": "Must be a string."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self, serializers.RegexField):
            self.validators.append(RegexValidator(NO_NUL))

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictRegexField(StrictCharField, serializers.RegexField):
    pass


class StrictBooleanField(serializers.BooleanField):
    """A BooleanField that takes only JSON ``true`` and ``false``, as the schema says: not
    ``0``, ``1`` or ``"yes"``."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


@extend_schema_field({"type": "string", "pattern": f"^{ID_REGEX}$", "example": "1234567890123456789"})
class IdField(serializers.CharField):
    """A 64-bit id given as a decimal string (ids are strings in JSON). A blank one is
    refused like any other non-id, also in a query string (``?cursor=``), where DRF
    would otherwise take an empty optional value for an absent one."""

    default_error_messages = {"invalid": "Must be a positive integer id."}

    def get_value(self, dictionary):
        if self.field_name in dictionary and dictionary[self.field_name] == "":
            return ""
        return super().get_value(dictionary)

    def run_validation(self, data=serializers.empty):
        if data == "":
            self.fail("invalid")
        return super().run_validation(data)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not value.isascii() or not value.isdigit() or len(value) > 19 or not 0 < int(value) <= MAX_ID:
            self.fail("invalid")
        return int(value)


# Printable ASCII, as for any HTTP token a client makes up (a UUID, say).
IDEMPOTENCY_KEY_REGEX = r"^[\x21-\x7e]{1,255}$"
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_REGEX)


def idempotency_key(request) -> str | None:
    """The request's ``Idempotency-Key`` header, None without one; a malformed key is
    DRF's ``ValidationError`` under ``key`` (a 400 on ``/v1``, a 422 on the Mastodon API)."""
    if "Idempotency-Key" not in request.headers:
        return None
    key = request.headers["Idempotency-Key"]
    if not _IDEMPOTENCY_KEY.fullmatch(key):
        raise serializers.ValidationError({"key": ["Idempotency-Key must be 1-255 printable ASCII characters."]})
    return key
