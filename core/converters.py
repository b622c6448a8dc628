"""URL converters shared by the apps."""
from .fields import ID_REGEX


class IdConverter:
    """A positive 64-bit id; anything else (0, a leading zero, past 2**63 - 1) is not a route:
    a 404, never a 500. The OpenAPI schema shows the same pattern for the path parameter."""

    regex = ID_REGEX

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(value)
