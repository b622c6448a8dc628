"""The Redis timeline store: sorted idempotent inserts, no resurrection, trimming, merges."""
import pytest
from django.test import override_settings

from core import redis as core_redis
from timelines import store
from timelines.store import keys


def _list(redis, user_id):
    return [int(x) for x in redis.lrange(store.timeline_key(user_id), 0, -1)]


def test_insert_never_creates_a_timeline(redis):
    assert store.insert(user_ids=[1, 2], tweet_id=100) == 0
    assert not redis.exists(store.timeline_key(1))
    assert not redis.exists(store.timeline_key(2))


def test_out_of_order_and_duplicate_deliveries_keep_the_list_sorted(redis):
    store.merge(user_id=1, ids=[], complete=True, generation=0)  # an empty, complete timeline
    for tweet_id in [50, 70, 60, 10, 70, 90, 60, 80, 10]:
        store.insert(user_ids=[1], tweet_id=tweet_id)
    assert _list(redis, 1) == [90, 80, 70, 60, 50, 10, 0]
    window = store.read(user_id=1).window
    assert window.ids == [90, 80, 70, 60, 50, 10] and window.complete


def test_ids_of_different_lengths_compare_as_numbers(redis):
    store.merge(user_id=1, ids=[], complete=True, generation=0)
    for tweet_id in [9, 10, 1_000_000_000_000_000_001, 99, 7_000_000_000_000_000_000]:
        store.insert(user_ids=[1], tweet_id=tweet_id)
    assert _list(redis, 1)[:-1] == [7_000_000_000_000_000_000, 1_000_000_000_000_000_001, 99, 10, 9]


def test_64_bit_ids_beyond_double_precision_stay_distinct(redis):
    store.merge(user_id=1, ids=[], complete=True, generation=0)
    base = (1 << 62) + 1
    for tweet_id in [base + 2, base, base + 1]:
        store.insert(user_ids=[1], tweet_id=tweet_id)
    assert _list(redis, 1)[:-1] == [base + 2, base + 1, base]


@override_settings(TIMELINE_MAX_ENTRIES=10, TIMELINE_TRIM_SLACK=5)
def test_trims_back_to_the_cap_only_past_the_slack(redis):
    store.merge(user_id=1, ids=[], complete=True, generation=0)
    for tweet_id in range(1, 16):
        store.insert(user_ids=[1], tweet_id=tweet_id)
    # 15 ids + sentinel = 16 entries > 15: trimmed to the newest 10, sentinel gone.
    assert _list(redis, 1) == list(range(15, 5, -1))
    window = store.read(user_id=1).window
    assert window.ids == list(range(15, 5, -1)) and not window.complete
    # An id older than everything in a truncated list belongs to PostgreSQL's range.
    store.insert(user_ids=[1], tweet_id=2)
    assert 2 not in _list(redis, 1)


def test_merge_unions_with_what_is_already_there(redis):
    store.merge(user_id=1, ids=[90, 50], complete=False, generation=0)
    store.merge(user_id=1, ids=[70, 50, 30], complete=True, generation=0)
    window = store.read(user_id=1).window
    assert window.ids == [90, 70, 50, 30] and window.complete


@override_settings(TIMELINE_MAX_ENTRIES=3)
def test_merge_keeps_the_newest_cap_entries(redis):
    store.merge(user_id=1, ids=[5, 4, 3, 2, 1], complete=True, generation=0)
    window = store.read(user_id=1).window
    assert window.ids == [5, 4, 3] and not window.complete


def test_read_refreshes_the_idle_ttl_and_absent_is_none(redis, settings):
    assert store.read(user_id=1).window is None
    store.merge(user_id=1, ids=[3], complete=True, generation=0)
    redis.expire(store.timeline_key(1), 5)
    store.read(user_id=1)
    assert redis.ttl(store.timeline_key(1)) > settings.TIMELINE_INACTIVE_DAYS * 24 * 3600 - 10


@pytest.mark.parametrize("batch", [1, 7, 1000])
def test_one_insert_serves_many_timelines(redis, batch):
    for uid in range(batch):
        store.merge(user_id=uid, ids=[5], complete=True, generation=0)
    assert store.insert(user_ids=list(range(batch)) + [batch + 1], tweet_id=9) == batch
    assert all(_list(redis, uid)[0] == 9 for uid in range(batch))


def test_a_merge_read_before_a_follow_change_is_refused(redis):
    state = store.read(user_id=1)
    store.generation_advance(user_id=1, drop_timeline=True)
    assert not store.merge(user_id=1, ids=[5, 4], complete=True, generation=state.generation)
    assert not redis.exists(store.timeline_key(1))
    assert store.merge(user_id=1, ids=[5, 4], complete=True, generation=store.read(user_id=1).generation)
    assert store.read(user_id=1).window.ids == [5, 4]


def test_a_cached_graph_is_only_trusted_at_its_generation_and_pull_epoch():
    state = store.read(user_id=1)
    assert state.graph is None
    graph = store.Graph(followees={3, 2}, pulled={3})
    store.graph_save(user_id=1, generation=state.generation, pull_epoch=state.pull_epoch, graph=graph)
    assert store.read(user_id=1).graph == graph
    store.generation_advance(user_id=1, drop_timeline=False)
    assert store.read(user_id=1).graph is None
    state = store.read(user_id=1)
    store.graph_save(user_id=1, generation=state.generation, pull_epoch=state.pull_epoch, graph=graph)
    store.puller_add(author_id=7)  # a new celebrity: every cached graph is stale
    assert store.read(user_id=1).graph is None
    state = store.read(user_id=1)
    store.graph_save(user_id=1, generation=state.generation, pull_epoch=state.pull_epoch, graph=graph)
    store.puller_add(author_id=7)  # known already: nothing goes stale
    assert store.read(user_id=1).graph == graph


@pytest.mark.parametrize("followees, pulled", [
    (set(), set()),
    ({7}, {7}),
    (set(range(1, 2001, 2)), {3, 1999}),
    ({5, (1 << 32) + 1, (1 << 63) - 1}, {(1 << 63) - 1}),  # past 32 bits: 8 bytes an id
])
def test_a_cached_graph_comes_back_as_saved_in_four_bytes_an_id(redis, followees, pulled):
    state = store.read(user_id=1)
    graph = store.Graph(followees=followees, pulled=pulled)
    store.graph_save(user_id=1, generation=state.generation, pull_epoch=state.pull_epoch, graph=graph)
    assert store.read(user_id=1).graph == graph
    width = 4 if max(followees, default=0) < 1 << 32 else 8
    assert len(redis.get(keys.graph_key(1))) <= 40 + width * (len(followees) + len(pulled))


def test_a_graph_in_the_decimal_layout_is_read_again(redis):
    state = store.read(user_id=1)
    redis.set(keys.graph_key(1), f"{state.generation}:{state.pull_epoch}|2,3|3")  # as written before
    assert store.read(user_id=1).graph is None


def test_an_unfollow_keeps_the_list_and_a_follow_drops_it(redis):
    store.merge(user_id=1, ids=[5], complete=True, generation=0)
    store.generation_advance(user_id=1, drop_timeline=False)
    assert store.read(user_id=1).window.ids == [5]
    store.generation_advance(user_id=1, drop_timeline=True)
    assert store.read(user_id=1).window is None


def _pulled_copy_read(author_id: int) -> int:
    """Read ``author_id``'s pulled list as a page does (the pull sequence in the first
    round trip, the list in the next), so the process keeps a copy; the sequence read."""
    seq = store.read(user_id=1).pull_seq
    trip = core_redis.RoundTrip()
    store.author_read_prefetch(trip, author_ids=[author_id], seq=seq)
    trip.execute()
    return seq


@pytest.mark.parametrize("write", ["insert", "merge"])
def test_a_copy_of_a_pulled_list_serves_until_a_pulled_list_is_written(redis, write):
    store.author_merge(author_id=5, ids=[30, 20, 10], complete=True)
    seq = _pulled_copy_read(5)
    assert store.author_known(author_ids=[5], prefix=None, seq=seq) == {5: store.Window(ids=[30, 20, 10],
                                                                                        complete=True)}
    assert store.author_known(author_ids=[5, 6], prefix=None, seq=seq) is None  # all of them, or none
    assert store.author_known(author_ids=[5], prefix=2, seq=seq) is None  # as read with that prefix only
    if write == "insert":
        store.author_insert(author_id=6, tweet_id=40)  # another author's list, not even cached
    else:
        store.author_merge(author_id=5, ids=[40], complete=False)
    later = store.read(user_id=1).pull_seq
    assert later > seq
    assert store.author_known(author_ids=[5], prefix=None, seq=later) is None


def test_the_pull_sequence_never_comes_back_once_its_key_is_lost(redis):
    store.author_merge(author_id=5, ids=[10], complete=True)
    seq = _pulled_copy_read(5)
    redis.delete(keys.pull_seq_key())  # a server restarted empty, say
    assert store.read(user_id=1).pull_seq == 0
    store.author_merge(author_id=5, ids=[20], complete=True)
    assert store.read(user_id=1).pull_seq > seq


def _head_values(user_id: int, count: int) -> dict | None:
    trip = core_redis.RoundTrip()
    reply = store.read_prefetch(trip, user_id=user_id, prefix=50,
                                head_values=store.HeadValues(key_prefix=keys.prefixed("hv:"), count=count))
    trip.execute()
    return reply.value.head_values


def test_a_first_pages_read_brings_the_values_of_the_newest_ids_pulled_ones_included(redis):
    if core_redis.is_cluster():
        pytest.skip("a cluster's first round trip reads no value (the script's keys are undeclared)")
    big = 10**18  # ids past double precision, of two lengths: compared as numbers, not as Lua doubles
    store.merge(user_id=1, ids=[big + 90, big + 70, 50, 9], complete=True, generation=0)
    store.author_merge(author_id=5, ids=[big + 80, big + 75, 60], complete=True)
    store.author_merge(author_id=6, ids=[big + 85], complete=False)
    for tweet_id in (big + 90, big + 85, big + 80, 50):
        redis.set(keys.prefixed(f"hv:{tweet_id}"), f"v{tweet_id}")
    # No graph cached yet: the timeline's newest ids only, the sentinel left out.
    assert _head_values(1, 3) == {big + 90: b"v%d" % (big + 90), big + 70: None, 50: b"v50"}
    assert _head_values(1, 10) == {big + 90: b"v%d" % (big + 90), big + 70: None, 50: b"v50", 9: None}
    state = store.read(user_id=1)
    graph = store.Graph(followees={2, 5, 6}, pulled={5, 6})
    store.graph_save(user_id=1, generation=state.generation, pull_epoch=state.pull_epoch, graph=graph)
    assert _head_values(1, 4) == {big + 90: b"v%d" % (big + 90), big + 85: b"v%d" % (big + 85),
                                  big + 80: b"v%d" % (big + 80), big + 75: None}
    store.generation_advance(user_id=1, drop_timeline=False)  # the cached graph is stale: no pulled list
    assert set(_head_values(1, 4)) == {big + 90, big + 70, 50, 9}
