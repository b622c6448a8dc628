"""Filling the timeline caches from PostgreSQL: the one way a missing list or graph comes back.

The read path calls these on a miss (its only other writes are the store's TTL and live-bit bookkeeping),
and operators through ``manage.py rebuild_timelines``. Each fill reads
PostgreSQL and merges the result atomically into what Redis holds, so a
delivery that raced the read is never lost. They read the replica, when one is
set, only once it has replayed all the primary had committed (``caught_up``):
the second read of a rebuild must see every tweet whose fan-out skipped the
list, and a graph must hold every follow made before its generation.
"""
from django.conf import settings

from core import db

from . import store
from .metrics import REBUILDS
from .queries import author_ids_from_db, graph_from_db, timeline_ids_from_db


def timeline_rebuild(*, user_id: int, generation: int, replace: bool = False) -> store.Window:
    """Build a user's cached timeline from PostgreSQL, without losing a concurrent delivery.

    Fan-out skips a timeline that is not cached, so a tweet committed while we
    read PostgreSQL could be missed by both. Hence two reads: the first builds
    the list (merged atomically with whatever appeared meanwhile, or replacing
    it); the second, made once the list exists, sees every tweet whose fan-out
    could have skipped it, and is merged in too (a no-op in the common case). A
    merge is refused if the follow graph changed after ``generation`` was read;
    then the rebuild starts over, and if the graph keeps changing the page is
    served uncached.
    """
    REBUILDS.labels(kind="timeline").inc()
    store.mark_live(user_ids=[user_id])  # before PostgreSQL is read: from here on fan-outs address this user
    cap = settings.TIMELINE_MAX_ENTRIES
    for _ in range(3):
        for attempt in range(2):
            ids = db.read(lambda alias: timeline_ids_from_db(user_id=user_id, before=None, limit=cap,
                                                             pushed_only=True, using=alias), caught_up=True)
            if not store.merge(user_id=user_id, ids=ids, complete=len(ids) < cap, generation=generation,
                               replace=replace and attempt == 0):
                break
        else:
            window = store.read(user_id=user_id).window
            if window is not None:
                return window
        generation = store.generation(user_id=user_id)
    return store.Window(ids=ids, complete=len(ids) < cap)


def author_list_rebuild(*, author_id: int) -> store.Window:
    """Build an author's pulled list from PostgreSQL, with the same two reads as a timeline."""
    REBUILDS.labels(kind="author_list").inc()
    cap = settings.TIMELINE_MAX_ENTRIES
    for _ in range(2):
        ids = db.read(lambda alias: author_ids_from_db(author_id=author_id, pushed=False, limit=cap, using=alias),
                      caught_up=True)
        store.author_merge(author_id=author_id, ids=ids, complete=len(ids) < cap)
    return store.author_read(author_ids=[author_id])[author_id] or store.Window(ids=ids, complete=len(ids) < cap)


def graph_rebuild(*, user_id: int, state: store.HomeState) -> store.Graph:
    """Read the user's follow graph and cache it, tagged with the generation and pull
    epoch of ``state`` (read *before* the query, so a change meanwhile makes it stale)."""
    REBUILDS.labels(kind="graph").inc()
    graph = db.read(lambda alias: graph_from_db(user_id=user_id, using=alias), caught_up=True)
    store.graph_save(user_id=user_id, generation=state.generation, pull_epoch=state.pull_epoch, graph=graph)
    return graph
