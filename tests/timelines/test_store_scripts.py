"""The store's Lua scripts branch by branch: each mode of the combine script, the insert's walk and trim.

Each test writes through the store's public functions and asserts the Redis list that results: the ids,
newest first, and the ``0`` sentinel that closes a complete list. Small ids keep the lists readable.
"""
import pytest
from django.test import override_settings

from timelines import store
from timelines.store import keys


def _list(redis, user_id):
    return [int(x) for x in redis.lrange(store.timeline_key(user_id), 0, -1)]


def _seed(redis, user_id, entries):
    """A timeline holding exactly ``entries`` (ids newest first, then ``0`` if complete)."""
    store.merge(user_id=user_id, ids=[e for e in entries if e], complete=entries[-1:] == [0], generation=0)
    assert _list(redis, user_id) == entries


# --- insert ---------------------------------------------------------------------------------------------


def test_a_redelivered_id_is_not_counted_and_changes_nothing(redis):
    _seed(redis, 1, [50, 30, 10, 0])
    for tweet_id in (50, 30, 10):
        assert store.insert(user_ids=[1], tweet_id=tweet_id) == 0
    assert _list(redis, 1) == [50, 30, 10, 0]
    assert store.insert(user_ids=[1], tweet_id=40) == 1
    assert _list(redis, 1) == [50, 40, 30, 10, 0]


def test_an_insert_deep_in_a_long_list_lands_before_the_first_older_entry(redis):
    ids = list(range(400, 0, -10))  # 40 entries: the walk reads them in growing chunks
    _seed(redis, 1, [*ids, 0])
    for tweet_id in (395, 205, 15, 5, 205):
        store.insert(user_ids=[1], tweet_id=tweet_id)
    assert _list(redis, 1) == sorted([*ids, 395, 205, 15, 5], reverse=True) + [0]


def test_an_id_below_an_incomplete_list_is_left_to_postgresql(redis):
    _seed(redis, 1, [50, 30])
    assert store.insert(user_ids=[1], tweet_id=20) == 0
    assert store.insert(user_ids=[1], tweet_id=40) == 1
    assert _list(redis, 1) == [50, 40, 30]


@override_settings(TIMELINE_MAX_ENTRIES=10, TIMELINE_TRIM_SLACK=5)
def test_a_list_grows_into_the_slack_before_it_is_trimmed_to_the_cap(redis):
    _seed(redis, 1, [0])
    for tweet_id in range(1, 15):
        store.insert(user_ids=[1], tweet_id=tweet_id)
    # 14 ids and the sentinel: 15 entries, the cap plus the slack, not past it.
    assert _list(redis, 1) == [*range(14, 0, -1), 0]
    store.insert(user_ids=[1], tweet_id=15)
    assert _list(redis, 1) == list(range(15, 5, -1))


# --- merge: rebuild and replace -----------------------------------------------------------------------


def test_a_rebuild_of_two_partial_runs_vouches_down_to_the_lower_floor(redis):
    _seed(redis, 1, [90, 50])
    store.merge(user_id=1, ids=[70, 30], complete=False, generation=0)
    assert _list(redis, 1) == [90, 70, 50, 30]
    store.merge(user_id=1, ids=[95, 60], complete=False, generation=0)
    assert _list(redis, 1) == [95, 90, 70, 60, 50, 30]


def test_a_rebuild_into_a_complete_list_stays_complete(redis):
    _seed(redis, 1, [50, 30, 0])
    store.merge(user_id=1, ids=[70, 60], complete=False, generation=0)
    assert _list(redis, 1) == [70, 60, 50, 30, 0]
    store.merge(user_id=1, ids=[80, 60, 30], complete=True, generation=0)  # one sentinel, at the end
    assert _list(redis, 1) == [80, 70, 60, 50, 30, 0]


def test_a_replace_overwrites_what_the_list_held(redis):
    _seed(redis, 1, [90, 50, 10, 0])
    assert store.merge(user_id=1, ids=[70, 60], complete=False, generation=0, replace=True)
    assert _list(redis, 1) == [70, 60]
    assert store.merge(user_id=1, ids=[], complete=True, generation=0, replace=True)
    assert _list(redis, 1) == [0]


@override_settings(TIMELINE_MAX_ENTRIES=3)
def test_a_run_of_exactly_the_cap_stays_complete(redis):
    _seed(redis, 1, [3, 2, 1, 0])
    window = store.read(user_id=1).window
    assert window.ids == [3, 2, 1] and window.complete
    store.merge(user_id=1, ids=[4], complete=False, generation=0)  # one more: cut to the cap, no sentinel
    assert _list(redis, 1) == [4, 3, 2]


@override_settings(TIMELINE_MAX_ENTRIES=2600)
def test_a_run_longer_than_one_write_chunk_is_written_whole(redis):
    ids = list(range(2500, 0, -1))
    store.merge(user_id=1, ids=ids, complete=True, generation=0)
    assert _list(redis, 1) == [*ids, 0]


# --- backfill: one new followee's ids ------------------------------------------------------------------


def test_a_backfill_never_creates_a_timeline(redis):
    assert store.backfill(user_id=1, ids=[5, 4], complete=True, generation=0)
    assert not redis.exists(store.timeline_key(1))
    store.remove(user_id=1, ids=[5], generation=0)
    assert not redis.exists(store.timeline_key(1))


def test_a_complete_author_backfilled_into_a_complete_timeline_keeps_it_complete(redis):
    _seed(redis, 1, [100, 10, 0])
    assert store.backfill(user_id=1, ids=[60, 50], complete=True, generation=0)
    assert _list(redis, 1) == [100, 60, 50, 10, 0]


def test_a_partial_author_cuts_a_complete_timeline_at_the_authors_floor(redis):
    # Tweets of the author older than 50 exist but were not read: below 50 the list can no longer vouch.
    _seed(redis, 1, [100, 10, 0])
    assert store.backfill(user_id=1, ids=[60, 50], complete=False, generation=0)
    assert _list(redis, 1) == [100, 60, 50]


def test_a_backfill_vouches_down_to_the_higher_of_the_two_floors(redis):
    _seed(redis, 1, [100, 40])
    store.backfill(user_id=1, ids=[90, 60], complete=False, generation=0)  # the author's floor is higher
    assert _list(redis, 1) == [100, 90, 60]
    _seed(redis, 2, [100, 70])
    store.backfill(user_id=2, ids=[90, 50, 20], complete=True, generation=0)  # the timeline's floor is higher
    assert _list(redis, 2) == [100, 90, 70]


def test_a_backfill_or_remove_read_before_a_follow_change_is_refused(redis):
    _seed(redis, 1, [50, 0])
    stale = store.generation(user_id=1)
    store.generation_advance(user_id=1)
    assert not store.backfill(user_id=1, ids=[60], complete=True, generation=stale)
    store.remove(user_id=1, ids=[50], generation=stale)
    assert _list(redis, 1) == [50, 0]
    current = store.generation(user_id=1)
    assert store.backfill(user_id=1, ids=[60], complete=True, generation=current)
    store.remove(user_id=1, ids=[50], generation=current)
    assert _list(redis, 1) == [60, 0]


# --- remove: a former followee's ids -------------------------------------------------------------------


def test_a_remove_keeps_the_rest_and_the_sentinel(redis):
    _seed(redis, 1, [90, 50, 30, 10, 0])
    store.remove(user_id=1, ids=[50, 10, 7], generation=0)
    assert _list(redis, 1) == [90, 30, 0]
    _seed(redis, 2, [90, 50, 30])
    store.remove(user_id=2, ids=[90], generation=0)
    assert _list(redis, 2) == [50, 30]


# --- the idle TTL ----------------------------------------------------------------------------------------


def test_a_rebuild_sets_the_idle_ttl_and_a_backfill_or_remove_keeps_the_lists_own(redis, settings):
    idle = settings.TIMELINE_INACTIVE_DAYS * 24 * 3600
    key = store.timeline_key(1)
    _seed(redis, 1, [50, 30, 0])
    redis.expire(key, 100)
    store.backfill(user_id=1, ids=[40], complete=True, generation=0)
    assert 0 < redis.ttl(key) <= 100  # a follow does not keep an idle timeline alive
    store.remove(user_id=1, ids=[40], generation=0)
    assert 0 < redis.ttl(key) <= 100
    store.merge(user_id=1, ids=[60], complete=False, generation=0)
    assert redis.ttl(key) > idle - 10


# --- generation_advance, progress, pullers ---------------------------------------------------------------


def test_generation_advance_moves_up_and_drops_the_timeline_only_when_asked(redis):
    _seed(redis, 1, [5, 0])
    first = store.generation_advance(user_id=1)
    second = store.generation_advance(user_id=1)
    assert first < second == store.generation(user_id=1)
    assert _list(redis, 1) == [5, 0]
    store.generation_advance(user_id=1, drop_timeline=True)
    assert not redis.exists(store.timeline_key(1))


def test_the_generation_never_moves_back_even_after_its_key_expires(redis):
    # A graph cached at some generation must never match a later one: were the
    # counter to restart from zero when its key expires, it would meet it again.
    before = store.generation_advance(user_id=1)
    redis.delete(keys.generation_key(1))  # expired
    assert store.generation(user_id=1) == 0
    after = store.generation_advance(user_id=1)
    assert after > before
    redis.set(keys.generation_key(1), after + 10**9)  # a counter ahead of the clock still counts up
    assert store.generation_advance(user_id=1) == after + 10**9 + 1


def test_a_fanouts_batches_are_recorded_once_and_the_last_one_done_finishes_it():
    assert store.progress_init(tweet_id=7, batches=["0:3", "3:6"])
    assert not store.progress_init(tweet_id=7, batches=["0:3", "3:6", "6:9"])
    assert sorted(store.progress_pending(tweet_id=7)) == ["0:3", "3:6"]
    assert not store.progress_done(tweet_id=7, batch="3:6")
    assert not store.progress_done(tweet_id=7, batch="3:6")  # a duplicate is not the last one
    assert store.progress_pending(tweet_id=7) == ["0:3"]
    assert store.progress_done(tweet_id=7, batch="0:3")
    assert store.progress_pending(tweet_id=7) is None


# --- reading a window ---------------------------------------------------------------------------------


def test_a_prefix_read_is_a_window_of_that_many_ids(redis):
    _seed(redis, 1, [5, 4, 3, 2, 1, 0])
    for prefix, ids, complete in [(3, [5, 4, 3], False), (4, [5, 4, 3, 2], False), (5, [5, 4, 3, 2, 1], True),
                                  (6, [5, 4, 3, 2, 1], True), (None, [5, 4, 3, 2, 1], True)]:
        window = store.read(user_id=1, prefix=prefix).window
        assert (window.ids, window.complete) == (ids, complete), prefix


@override_settings(TIMELINE_MAX_ENTRIES=3)
def test_a_full_read_of_a_list_in_its_slack_is_cut_to_the_cap(redis):
    _seed(redis, 1, [0])
    for tweet_id in range(1, 6):
        store.insert(user_ids=[1], tweet_id=tweet_id)
    assert len(_list(redis, 1)) > 3  # within the slack, not trimmed yet
    window = store.read(user_id=1).window
    assert window.ids == [5, 4, 3] and not window.complete


def test_an_authors_pulled_list_is_merged_and_read_like_a_timeline(redis):
    assert store.author_read(author_ids=[9]) == {9: None}
    store.author_merge(author_id=9, ids=[50, 30], complete=False)
    store.author_merge(author_id=9, ids=[40, 20], complete=False)
    assert [int(x) for x in redis.lrange(store.author_key(9), 0, -1)] == [50, 40, 30, 20]
    assert store.author_insert(author_id=9, tweet_id=60) == 1
    assert store.author_insert(author_id=8, tweet_id=60) == 0  # not cached: left alone
    window = store.author_read(author_ids=[9], prefix=2)[9]
    assert window.ids == [60, 50] and not window.complete


@pytest.mark.parametrize("window, floor", [
    (store.Window(ids=[9, 5, 3], complete=False), 3),
    (store.Window(ids=[9, 5, 3], complete=True), None),
    (store.Window(ids=[], complete=True), None),
])
def test_a_window_vouches_for_the_ids_down_to_its_last_one(window, floor):
    assert window.floor == floor


def test_an_incomplete_empty_window_vouches_for_no_id():
    floor = store.Window(ids=[], complete=False).floor
    assert floor is not None and floor > (1 << 63) - 2
