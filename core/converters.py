"""URL converters shared by the apps."""


class IdConverter:
    """A positive 64-bit id; anything longer or larger is not a route (404, never a 500)."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number >= 1 << 63:
            raise ValueError("id out of range")
        return number

    def to_url(self, value) -> str:
        return str(value)
