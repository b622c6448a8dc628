"""The insert script's high-water mark: a fast path that must never change what a list holds.

An id newer than its slot's mark is pushed onto each list without reading its head
(``lua/insert.lua``). That is only right if no writer of those lists can put an id
above the mark without raising it. The property test runs random sequences of every
writer the store has (fan-out inserts, rebuilds, forced rebuilds, backfills, removals,
evictions, a retried insert, a lost mark) twice on a real Redis: once as they come, once with the mark
deleted before every step (so every insert takes the slow path, which reads each
head). The lists must come out the same, sorted and without duplicates, and after
every step a mark that exists must bound every list of its slot. A second test
checks the writers themselves: every script that writes a list raises the mark,
and nothing in the product writes a list another way.
"""
import re
import time
import uuid
from pathlib import Path

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from core.redis import connection as redis_connection
from timelines import store
from timelines.store import keys, writes
from tweets import snowflake

ROOT = Path(__file__).resolve().parents[2]
USERS = [1, 2, 3]
BASE = snowflake.lowest_id_at(int(time.time() * 1000))
# An id is drawn as an offset from the step's own moment (100 apart a step, see _at), so
# later steps mostly bring newer ids, as a live system does, and sometimes older ones.
ids = st.integers(min_value=-250, max_value=250)
runs = st.lists(ids, max_size=12, unique=True).map(lambda run: sorted(run, reverse=True))
users = st.lists(st.sampled_from(USERS), min_size=1, max_size=3, unique=True)
steps = st.lists(st.one_of(
    st.tuples(st.just("insert"), users, ids),
    st.tuples(st.just("again"), users),  # the last insert's id once more (a retried fan-out)
    st.tuples(st.just("rebuild"), st.sampled_from(USERS), runs, st.booleans()),
    st.tuples(st.just("replace"), st.sampled_from(USERS), runs, st.booleans()),
    st.tuples(st.just("backfill"), st.sampled_from(USERS), runs, st.booleans()),
    st.tuples(st.just("remove"), st.sampled_from(USERS), runs),
    st.tuples(st.just("evict"), st.sampled_from(USERS)),
    st.tuples(st.just("lose-mark")),
), min_size=1, max_size=25)


def _at(step: tuple, now: int) -> tuple:
    """``step`` with its id offsets made ids minted around ``now``."""
    kind, *args = step
    if kind == "insert":
        return (kind, args[0], now + args[1])
    if kind in ("rebuild", "replace", "backfill", "remove"):
        return (kind, args[0], [now + x for x in args[1]], *args[2:])
    return step


def _newest(step: tuple) -> int:
    kind, *args = step
    if kind == "insert":
        return args[1]
    if kind in ("rebuild", "replace", "backfill", "remove"):
        return max(args[1], default=0)
    return 0


def _step(step: tuple) -> None:
    kind, *args = step
    if kind == "insert":
        store.insert(user_ids=args[0], tweet_id=args[1])
    elif kind in ("rebuild", "replace"):
        user, run, complete = args
        store.merge(user_id=user, ids=run, complete=complete, generation=store.generation(user_id=user),
                    replace=kind == "replace")
    elif kind == "backfill":
        user, run, complete = args
        writes.backfill(user_id=user, ids=run, complete=complete, generation=store.generation(user_id=user))
    elif kind == "remove":
        writes.remove(user_id=args[0], ids=args[1], generation=store.generation(user_id=args[0]))
    elif kind == "evict":
        store.evict(user_id=args[0])
    elif kind == "lose-mark":
        _lose_marks()


def _lose_marks() -> None:
    # One key on one server, one a slot on a cluster (where these users' timelines may lie apart).
    for mark in {keys.mark_key(keys.timeline_key(u)) for u in USERS}:
        redis_connection().delete(mark)


def _lists() -> dict[int, list[int]]:
    client = redis_connection()
    return {u: [int(e) for e in client.lrange(keys.timeline_key(u), 0, -1)] for u in USERS}


def _check_sorted_and_bounded(lists: dict[int, list[int]]) -> None:
    for user, entries in lists.items():
        held = entries[:-1] if entries and entries[-1] == 0 else entries  # the sentinel closes a complete list
        assert all(a > b for a, b in zip(held, held[1:], strict=False)), f"user {user}: {entries}"
        mark = redis_connection().get(keys.mark_key(keys.timeline_key(user)))
        if mark is not None and entries:
            assert entries[0] <= int(mark), f"user {user}'s list holds {entries[0]}, above the mark {int(mark)}"


def _play(steps: list[tuple], *, slow: bool, settings, monkeypatch) -> dict[int, list[int]]:
    settings.REDIS_KEY_PREFIX = f"{settings.REDIS_KEY_PREFIX.split('hwm-')[0]}hwm-{uuid.uuid4().hex[:8]}:"
    # The ids are "minted" as the steps come: a mark made now starts above every id so far
    # (as production's starts above every id minted yet), and later ids may pass it.
    minted, last = [BASE], BASE
    monkeypatch.setattr(writes, "mark_floor", lambda: minted[0])
    for n, offsets in enumerate(steps):
        step = ("insert", offsets[1], last) if offsets[0] == "again" else _at(offsets, BASE + 100 * n)
        last = step[2] if step[0] == "insert" else last
        minted[0] = max(minted[0], _newest(step))
        if slow:
            _lose_marks()
        _step(step)
        _check_sorted_and_bounded(_lists())
    return _lists()


@hypothesis_settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps)
def test_the_mark_never_changes_what_a_list_holds(steps, settings, monkeypatch):
    fast = _play(steps, slow=False, settings=settings, monkeypatch=monkeypatch)
    assert fast == _play(steps, slow=True, settings=settings, monkeypatch=monkeypatch)


LIST_WRITES = re.compile(r"'(LPUSH|RPUSH|LPUSHX|RPUSHX|LINSERT|LSET|LMOVE|RPOPLPUSH|RESTORE|COPY|RENAME)'")
PRODUCT = ("core", "social", "tweets", "timelines", "media", "mastoapi", "streaming", "web", "config")


def test_every_script_that_writes_a_list_raises_the_mark():
    lua = ROOT / "timelines" / "store" / "lua"
    writers = {path.name for path in lua.glob("*.lua") if LIST_WRITES.search(path.read_text())}
    assert writers == {"insert.lua", "combine.lua"}, "a new list writer must raise the mark (and join this test)"
    for name in writers:
        assert re.search(r"redis\.call\('SET', (KEYS\[3\]|mark_key), ", (lua / name).read_text()), name


def test_nothing_in_the_product_writes_a_list_but_the_store_scripts():
    direct = re.compile(r"\.(lpush|rpush|lpushx|rpushx|linsert|lset|lmove|rpoplpush|restore)\(")
    found = [f"{path.relative_to(ROOT)}:{n}" for package in PRODUCT for path in (ROOT / package).rglob("*.py")
             if "migrations" not in path.parts
             for n, line in enumerate(path.read_text().splitlines(), 1) if direct.search(line)]
    assert not found, found
