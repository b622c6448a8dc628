"""This process's copies of the pulled lists it read, good while the pull sequence stands still,
and when it last refreshed each list's idle TTL.

Every web process keeps the pulled lists it read, each with the pull sequence
read in the reader's first round trip, before the list: every write to a pulled
list advances the sequence once the list is written (``writes.author_insert``,
``writes.author_merge``), so while a reader's first round trip still reads the
same sequence, the copy is the list as Redis holds it (or newer). A reader of
celebrities then has their lists once its first round trip is back, which on
one server also read the page's tweets, pulled ones included (``lua/head.lua``).
Every celebrity's post changes the sequence for every list.

A list read from a copy still has its idle TTL refreshed (``author_touch``), at
most once every ``TOUCH_EVERY`` seconds a process: the TTL is days long, and a
first page whose tweets came in the first round trip then needs no second.
"""
import time

from . import keys
from .windows import Window, read_size

_known: dict[tuple[str, int], tuple[int, Window]] = {}
_KNOWN_MAX = 4096  # copies kept per process (a few ids each); all dropped when full
_touched: dict[int, float] = {}  # author id -> when this process last refreshed the list's TTL (monotonic)
TOUCH_EVERY = 60.0


def author_known(*, author_ids: list[int], prefix: int | None, seq: int) -> dict[int, Window] | None:
    """This process's copies of the pulled lists of ``author_ids``, as ``author_read`` with
    ``prefix`` would give them now that the pull sequence reads ``seq``; None unless it has all."""
    size = read_size(prefix)
    known = {}
    for author_id in author_ids:
        copy = _known.get((keys.author_key(author_id), size))
        if copy is None or copy[0] != seq:
            return None
        known[author_id] = copy[1]
    return known


def remember(*, windows: dict[int, Window | None], size: int, seq: int) -> None:
    """Keep the pulled lists just read (``size`` ids each) as of pull sequence ``seq``."""
    if len(_known) >= _KNOWN_MAX:
        _known.clear()
    for author_id, window in windows.items():
        if window is not None:
            _known[keys.author_key(author_id), size] = (seq, window)
    touched(author_ids=list(windows))  # a read refreshes the TTL


def touch_due(*, author_ids: list[int]) -> list[int]:
    """Those of ``author_ids`` whose list's TTL this process has not refreshed within ``TOUCH_EVERY``
    seconds (counted as refreshed now: the caller refreshes them)."""
    now = time.monotonic()
    due = [author_id for author_id in author_ids if now - _touched.get(author_id, -TOUCH_EVERY) >= TOUCH_EVERY]
    touched(author_ids=due, now=now)
    return due


def touched(*, author_ids: list[int], now: float | None = None) -> None:
    """Note the lists of ``author_ids`` as refreshed (at ``now``)."""
    if len(_touched) >= _KNOWN_MAX:
        _touched.clear()
    now = time.monotonic() if now is None else now
    for author_id in author_ids:
        _touched[author_id] = now
