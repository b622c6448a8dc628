"""Rate strings (``30/min``, ``900/15min``, ``20/hour``) as the rate-limit settings spell them,
and the ``Decision`` a limit gives one request (``core.throttling`` counts it).

DRF's own parser takes ``N/period`` with one unit; these also take a multiple
of the unit (``15min``, ``2h``), so the timeline's "900 per 15 minutes" is said
as it is. Imported by the settings, which refuse a bad rate at startup: no
Django here.
"""
import re
from dataclasses import dataclass
from functools import lru_cache

_UNITS = {
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
}
_RATE = re.compile(r"\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Rate:
    limit: int  # requests allowed per window
    seconds: int  # the window's length


@dataclass(frozen=True)
class Decision:
    """One request's answer from the limiter, and what its headers say."""

    allowed: bool
    limit: int
    remaining: int  # requests left in the window after this one
    reset: int  # unix time (seconds) at which the window ends and the counter starts afresh
    retry_after: int  # seconds until a refused request may be tried again (0 when allowed)

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
                "X-RateLimit-Reset": str(self.reset)}


@lru_cache(maxsize=64)
def parse_rate(text: str) -> Rate:
    """``"900/15min"`` -> ``Rate(limit=900, seconds=900)``; ``ValueError`` for anything else.

    The unit is one of s, sec, second(s), m, min, minute(s), h, hour(s), d,
    day(s), optionally after a whole multiple (``15min``); the limit is at least 1.
    """
    match = _RATE.fullmatch(text) if isinstance(text, str) else None
    unit = _UNITS.get(match.group(3).lower()) if match else None
    if match is None or unit is None:
        raise ValueError(f"{text!r} is not a rate like 30/min, 900/15min, 20/hour or 5/s.")
    limit, multiple = int(match.group(1)), int(match.group(2) or 1)
    if limit < 1 or multiple < 1:
        raise ValueError(f"{text!r}: the limit and the period must be at least 1.")
    return Rate(limit=limit, seconds=multiple * unit)
