"""The Redis timeline store: the only code that knows timeline key names and scripts.

A home timeline is a Redis LIST of decimal tweet ids, newest first (Redis packs
each integer-looking entry into 8-10 bytes). It holds the *pushed* tweets of
the user's followees and all of the user's own tweets, over a gapless range:
every such tweet newer than its last entry is in it. When the list holds the
*whole* range, a sentinel ``0`` closes it, so an empty or short timeline is
still "cached" and the reader knows nothing older exists; without the sentinel,
older pages continue from PostgreSQL. A celebrity's tweets are not pushed: each
author with pulled tweets has a list of them (same shape, same rules), which
readers merge in by id.

Callers use this package's names (``store.insert``, ``store.read`` …); the
modules behind them: ``keys`` (every key name), ``scripts`` (the Lua scripts in
``lua/``, loaded by name), ``windows`` (what a list read gives), ``writes``
(timeline and pulled-list writes), ``graph`` (the packed follow graph),
``live`` (the live-user bitmaps), ``fanout`` (fan-out bookkeeping), ``reads``
(the read path's round trips), ``process_cache`` (this process's copies of
pulled lists) and ``recovery`` (what a Redis Cluster failover may have lost).
"""
from .fanout import claim_once, claim_release, progress_done, progress_init, progress_pending
from .graph import Graph, graph_save
from .keys import author_key, timeline_key, timeline_keys
from .live import index_live, live_only, mark_live
from .process_cache import author_known, touch_due
from .reads import (
    HeadValues,
    HomeState,
    author_read,
    author_read_prefetch,
    author_touch,
    read,
    read_prefetch,
)
from .recovery import Forgotten, slot_masters_record, slot_masters_seen, slots_forget
from .windows import SENTINEL, Window
from .writes import (
    author_insert,
    author_merge,
    backfill,
    evict,
    existing,
    exists,
    generation,
    generation_advance,
    insert,
    merge,
    puller_add,
    remove,
)

__all__ = [
    "SENTINEL", "Forgotten", "Graph", "HeadValues", "HomeState", "Window", "author_insert", "author_key",
    "author_known", "author_merge", "author_read", "author_read_prefetch", "author_touch", "backfill", "claim_once",
    "claim_release", "evict", "exists", "existing", "generation", "generation_advance", "graph_save", "index_live",
    "insert", "live_only", "mark_live", "merge", "progress_done", "progress_init", "progress_pending", "puller_add",
    "read", "read_prefetch", "remove", "slot_masters_record", "slot_masters_seen", "slots_forget", "timeline_key",
    "timeline_keys", "touch_due",
]
