"""Times as the APIs write them: ISO 8601 in UTC, with ``Z`` for the offset.

``/v1`` writes as many fractional digits as the time has (none for a whole
second, six otherwise: Python's and DRF's own rendering, which its OpenAPI
schema describes as ``date-time``); the Mastodon API always writes
milliseconds, as Mastodon does. Both pass ``timespec`` here rather than format
a time themselves.
"""
from datetime import UTC, datetime

__all__ = ["iso_utc", "iso_utc_from_unix"]


def iso_utc(moment: datetime, *, timespec: str = "auto") -> str:
    """``moment`` (timezone-aware) in UTC as ISO 8601 ending in ``Z``; ``timespec`` as ``datetime.isoformat``'s."""
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def iso_utc_from_unix(seconds: float, *, timespec: str = "auto") -> str:
    """Unix ``seconds`` as ``iso_utc`` writes them."""
    return iso_utc(datetime.fromtimestamp(seconds, UTC), timespec=timespec)
