"""What the store holds of one id list, as readers see it: a ``Window``.

A timeline or pulled list is gapless down to its last id; a closing ``SENTINEL``
says it holds the whole range (nothing older exists), so a window knows the
floor below which it cannot answer.
"""
from dataclasses import dataclass

from django.conf import settings

SENTINEL = b"0"


@dataclass(frozen=True)
class Window:
    """What the cache holds of one id list: ids newest first, and whether that is all of it."""

    ids: list[int]
    complete: bool

    @property
    def floor(self) -> int | None:
        """The oldest id this window vouches for (None: it holds everything).

        Every id at or above the floor that belongs in the list is in it."""
        if self.complete:
            return None
        return self.ids[-1] if self.ids else _NO_FLOOR


_NO_FLOOR = (1 << 63) - 1  # an incomplete, empty window vouches for nothing


def window(raw: list[bytes], cap: int) -> Window:
    """The window of a list as read (``raw``: one entry past ``cap``, which tells whether the sentinel follows)."""
    complete = bool(raw) and raw[-1] == SENTINEL
    return Window(ids=[int(x) for x in raw[:cap] if x != SENTINEL], complete=complete)


def read_size(prefix: int | None) -> int:
    """How many ids a read with ``prefix`` takes: the newest ``prefix``, never more than the cap."""
    return min(prefix or settings.TIMELINE_MAX_ENTRIES, settings.TIMELINE_MAX_ENTRIES)
