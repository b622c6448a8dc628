"""The fan-out phase's count of script calls: ``INFO commandstats`` before and after, on a server of its own
(the shared one counts everybody's commands)."""
from bench.run import _scripts, commandstats, commandstats_delta


def test_the_delta_counts_the_scripts_called_in_between_and_nothing_that_was_not(own_valkey):
    client = own_valkey
    client.lpush("before", 1)
    before = commandstats(client)
    for i in range(3):
        client.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, f"k{i}", i)
    client.get("k0")
    delta = commandstats_delta(before, commandstats(client))
    assert delta["eval"]["calls"] == 3 and delta["eval"]["usec"] >= 0
    assert delta["get"]["calls"] == 1
    assert "lpush" not in delta, "called before the first count only"
    scripts = _scripts(delta)
    assert scripts["calls"] == 3 and scripts["commands"] is delta


def test_a_command_first_seen_in_between_counts_from_zero():
    assert commandstats_delta({}, {"evalsha": (7, 70)}) == {"evalsha": {"calls": 7, "usec": 70}}
    assert commandstats_delta({"get": (5, 50)}, {"get": (5, 50)}) == {}
