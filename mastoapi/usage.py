"""The instance's usage counts (accounts, accounts that posted lately, posts), as the
instance documents and NodeInfo show them.

Counting is a scan, and these documents are read by every client that starts and by
every crawler, so each process counts at most once every ``USAGE_SECONDS`` and answers
the counts it has in between: the one cache of this module, filled only by ``usage``.
"""
import threading
import time
from dataclasses import dataclass

from social import selectors as social_selectors
from tweets import selectors as tweets_selectors

USAGE_SECONDS = 300
_DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class Usage:
    users: int
    active_month: int  # accounts that posted in the last 30 days
    active_halfyear: int  # in the last 180 days
    posts: int


_lock = threading.Lock()
_last: tuple[float, Usage] | None = None


def _count() -> Usage:
    now_ms = time.time_ns() // 1_000_000
    return Usage(users=social_selectors.users_count(),
                 active_month=tweets_selectors.authors_since(since_ms=now_ms - 30 * _DAY_MS),
                 active_halfyear=tweets_selectors.authors_since(since_ms=now_ms - 180 * _DAY_MS),
                 posts=tweets_selectors.posts_count())


def usage() -> Usage:
    """The counts, at most ``USAGE_SECONDS`` old (counted now when they are older)."""
    global _last
    with _lock:
        if _last is None or time.monotonic() - _last[0] > USAGE_SECONDS:
            _last = (time.monotonic(), _count())
        return _last[1]

