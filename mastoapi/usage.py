"""The instance's usage counts (accounts, accounts that posted lately, posts), as the
instance documents and NodeInfo show them.

Counting scans the tweets of the last half year, and these documents are read by every
client that starts and by every crawler, so no request counts: beat does, every
``INSTANCE_USAGE_EVERY_SECONDS`` (``mastoapi.count_usage``), into the shared cache,
and the documents read the last counts there. Until beat has counted once (a fresh
deployment), or while the cache cannot be read, each process counts for itself at most
once every ``PROCESS_COUNT_SECONDS``.
"""
import logging
import threading
import time
from dataclasses import asdict, dataclass

from django.conf import settings
from django.core.cache import cache

from social import selectors as social_selectors
from tweets import selectors as tweets_selectors

logger = logging.getLogger(__name__)

PROCESS_COUNT_SECONDS = 300
_KEY = "mastoapi:instance-usage"
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


def usage_count() -> Usage:
    """Count now and keep the counts for every process to read (beat's task); kept twice as
    long as beat's period, so a missed run or two shows the last counts, not none."""
    counted = _count()
    cache.set(_KEY, asdict(counted), timeout=2 * settings.INSTANCE_USAGE_EVERY_SECONDS + 60)
    return counted


def usage() -> Usage:
    """The last counts beat made, or this process's own (at most ``PROCESS_COUNT_SECONDS`` old)."""
    global _last
    try:
        stored = cache.get(_KEY)
    except Exception as exc:  # noqa: BLE001 - the shared cache is Redis: without it, counts of our own
        logger.warning("instance usage: the cache cannot be read (%s); counting in this process", exc)
        stored = None
    if stored is not None:
        return Usage(**stored)
    with _lock:
        if _last is None or time.monotonic() - _last[0] > PROCESS_COUNT_SECONDS:
            _last = (time.monotonic(), _count())
        return _last[1]
