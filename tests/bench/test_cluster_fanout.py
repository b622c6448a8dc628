"""The same fan-out on a 3-master cluster and on one server (bench/cluster_fanout.py), on servers of its own."""
import pytest

from bench import cluster_fanout, report


def test_copies_of_timelines_are_read_and_written_back_alike(own_valkey):
    keys = [f"tl:{{{user}}}" for user in range(30)]
    for user, key in enumerate(keys):
        own_valkey.rpush(key, *range(100 + user, 0, -1))
    lists = cluster_fanout.read_lists(own_valkey, [*keys, "tl:{gone}"])
    assert len(lists) == 30 and lists[0][0] == b"100", "a key that is not there is left out"
    cluster_fanout.fill(own_valkey, [f"copy:{{{i}}}" for i in range(45)], lists)
    assert own_valkey.lrange("copy:{3}", 0, -1) == lists[3]
    assert own_valkey.lrange("copy:{33}", 0, -1) == lists[3], "fewer lists than keys: they are used again"
    assert own_valkey.dbsize() == 45, "the target emptied first"


def test_the_fanout_is_timed_on_a_cluster_and_one_server_side_by_side():
    said = []
    result = cluster_fanout.measure(timelines=600, rounds=2, lists=cluster_fanout.synthetic_lists(20, entries=50),
                                    say=said.append)
    assert result["timelines"] == 600 and result["rounds"] == 2 and result["distinct_lists"] == 20 and result["redis"]
    assert result["one_server_calls"] == 1  # 600 keys, one chunk
    assert result["cluster_calls"] == 3  # one per master: the keys of every slot it serves in one call
    assert result["cluster_per_slot_calls"] > 500  # about a call per key: each user's keys have a slot of their own
    medians = result["cluster_ms"]["median"], result["one_server_ms"]["median"]
    assert result["ratio"] == pytest.approx(medians[0] / medians[1], rel=0.01)
    assert [line for line in said if "round" in line][-1].startswith("  round 2/2: one server")
    assert "3-master cluster" in said[-1]

    text = "".join(report._cluster_fanout_lines({"cluster_fanout": result}))
    assert f"**{result['ratio']:.2f}×**" in text and "600 cached timelines" in text
    row = next(t for t in report.TARGETS if t[0].startswith("the same fan-out on the 3-master cluster"))
    assert row[1]({"cluster_fanout": result}) == result["ratio"]
    assert report._cluster_fanout_lines({}) == []
