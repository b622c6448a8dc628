"""The delivery stage's yardsticks (bench/ceilings.py) on a Valkey server of their own."""

from bench import ceilings
from bench.report import _script_ceiling_lines


def test_the_ceilings_write_every_copied_timeline_and_leave_the_originals_alone(own_valkey):
    import redis

    source, port = own_valkey, own_valkey.connection_pool.connection_kwargs["port"]
    keys = [f"tl:{{{user}}}" for user in range(50)]
    for key in keys:
        source.rpush(key, *range(500, 0, -1))  # newest first, as timelines are
    target = redis.Redis(port=port, db=3)
    copied = ceilings.copy_timelines(source, target, [*keys, "tl:{gone}"])
    assert copied == keys, "a key that is not there is not copied"

    rate = ceilings.script_ceiling(target, copied, rounds=3)
    heads = [int(target.lindex(key, 0)) for key in keys]
    assert rate > 0 and len(set(heads)) == 1 and heads[0] > 500, "the last round's id heads every list"
    assert target.llen(keys[0]) == 503

    assert ceilings.lpush_ceiling(target, ceilings.copy_timelines(source, target, keys), rounds=2) > 0
    assert target.llen(keys[0]) == 502, "copied afresh, then two pushes"
    assert source.llen(keys[0]) == 500 and int(source.lindex(keys[0], 0)) == 500, "the originals unchanged"


def test_the_report_sets_the_delivery_stage_against_the_script_ceiling():
    results = {"script_ceiling": {"timelines": 10_000, "mean_bytes": 6600, "rounds": 20,
                                  "script_per_s": {"median": 200_000.0, "min": 190_000.0, "max": 210_000.0},
                                  "lpush_per_s": {"median": 400_000.0, "min": 380_000.0, "max": 420_000.0},
                                  "script_vs_lpush": 0.5},
               "fanout": [{"all_active": True, "timings": {"addressed": 10_000, "redis_ms": 62.5}}]}
    text = "".join(_script_ceiling_lines(results))
    assert "**0.50×** LPUSH" in text
    assert "writes 160,000 timelines/s, **0.80×** the script ceiling" in text
    assert _script_ceiling_lines({}) == []
