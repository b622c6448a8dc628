"""This process's copies of the pulled lists it read, good while the pull sequence stands still.

Every web process keeps the pulled lists it read, each with the pull sequence
read in the reader's first round trip, before the list: every write to a pulled
list advances the sequence once the list is written (``writes.author_insert``,
``writes.author_merge``), so while a reader's first round trip still reads the
same sequence, the copy is the list as Redis holds it (or newer). A reader of
celebrities then has their lists before its second round trip, which reads the
page's tweets, pulled ones included: two round trips, as for anyone. Every
celebrity's post changes the sequence for every list.
"""
from . import keys
from .windows import Window, read_size

_known: dict[tuple[str, int], tuple[int, Window]] = {}
_KNOWN_MAX = 4096  # copies kept per process (a few ids each); all dropped when full


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
