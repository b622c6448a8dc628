"""The benchmark's looks into the timeline store: heads, floors and memory, without touching a TTL."""
from bench import store_probes
from core import redis as core_redis
from timelines import store


def test_floors_and_memory_are_read_without_touching_ttls(redis):
    store.merge(user_id=1, ids=[30, 20, 10], complete=False, generation=0)  # older pages in PostgreSQL
    store.merge(user_id=2, ids=[25], complete=True, generation=0)  # the whole timeline
    redis.expire(store.timeline_key(1), 100)
    assert store_probes.cached_floors(user_ids=[1, 2, 3]) == {1: 10}
    assert store_probes.heads(user_ids=[1, 2, 3], count=2) == {1: [30, 20], 2: [25], 3: []}
    state = store.read(user_id=2)
    store.graph_save(user_id=2, generation=state.generation, pull_epoch=state.pull_epoch,
                     graph=store.Graph(followees={5}, pulled=set()))
    usage = store_probes.memory_usage(user_ids=[1, 2, 3])
    assert usage[1].timeline_bytes > 0 and usage[1].timeline_entries == 3
    assert usage[2].timeline_entries == 2  # the sentinel counts
    assert usage[2].graph_bytes > 0 and usage[1].graph_bytes == 0
    assert usage[3] == store_probes.MemoryUsage(0, 0, 0, 0)
    assert core_redis.used_memory() > sum(u.timeline_bytes for u in usage.values())
    assert redis.ttl(store.timeline_key(1)) <= 100, "inspection leaves the idle TTL alone"
