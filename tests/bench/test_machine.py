"""The benchmark's trust rules (bench/machine.py): which process is whose, when a run is contaminated, medians
with their spread, CPU per request and the marginal-time ratio -- on made-up machines; and the memory of a
process group, on this one."""
import math
import os
import subprocess
import sys
import time

import pytest

from bench import machine
from bench.machine import Proc, Roles, Snapshot

BENCH_PID = 100
ROLES = Roles(roots={200: "web", 300: "worker", 400: "beat", 500: "redis", 600: "s3"}, generator=BENCH_PID,
              database="timeline_bench")


def _procs(*rows) -> list[Proc]:
    return [Proc(pid, ppid, name, cmdline, cpu) for pid, ppid, name, cmdline, cpu in rows]


MACHINE = _procs(
    (1, 0, "systemd", "/sbin/init", 0.0),
    (2, 0, "kthreadd", "", 0.0),
    (15, 2, "ksoftirqd/0", "", 0.0),
    (BENCH_PID, 1, "python", "python -m bench.run", 0.0),
    (200, BENCH_PID, "gunicorn", "gunicorn config.wsgi:application", 0.0),
    (201, 200, "gunicorn", "gunicorn config.wsgi:application", 0.0),  # a web worker
    (300, BENCH_PID, "celery", "celery -A config.celery_app worker", 0.0),
    (301, 300, "celery", "celery -A config.celery_app worker", 0.0),
    (400, BENCH_PID, "celery", "celery -A config.celery_app beat", 0.0),
    (500, BENCH_PID, "valkey-server", "valkey-server *:63799", 0.0),
    (600, BENCH_PID, "python", "python -m moto.server -p 8790", 0.0),
    (700, BENCH_PID, "py-spy", "py-spy record --pid 200", 0.0),  # a tool the bench started
    (800, 1, "postgres", "/usr/lib/postgresql/16/bin/postgres -D /var/lib/postgresql", 0.0),
    (801, 800, "postgres", "postgres: checkpointer", 0.0),
    (802, 800, "postgres", "postgres: postgres timeline_bench 127.0.0.1(40000) idle", 0.0),
    (803, 800, "postgres", "postgres: postgres timeline_main_tests 127.0.0.1(40002) SELECT", 0.0),
    (804, 800, "postgres", "postgres: autovacuum worker timeline_other", 0.0),
    (900, 1, "redis-server", "redis-server *:6379", 0.0),  # the shared Redis: not the bench's
    (901, 1, "python", "pytest tests/", 0.0),
)


def test_every_process_falls_in_the_group_of_its_stack_role():
    groups = machine.classify(MACHINE, ROLES)
    assert {pid: groups[pid] for pid in (200, 201, 300, 301, 400, 500, 600)} == {
        200: "web", 201: "web", 300: "worker", 301: "worker", 400: "beat", 500: "redis", 600: "s3"}
    assert groups[BENCH_PID] == groups[700] == "generator"
    assert groups[15] == "kernel"
    assert groups[900] == groups[901] == groups[1] == "other"


def test_only_the_postgres_backends_serving_the_bench_database_are_the_stacks():
    groups = machine.classify(MACHINE, ROLES)
    assert groups[802] == "postgres"
    assert groups[800] == groups[801] == "postgres"  # the server's shared helpers
    assert groups[803] == "other", "another database's backend is someone else's load"
    assert groups[804] == "other"


def _snapshots(before: dict[int, float], after: dict[int, float], seconds: float = 10.0):
    procs = {p.pid: p for p in MACHINE}
    groups = machine.classify(MACHINE, ROLES)

    def snap(at, cpu):
        return Snapshot(at=at, procs={pid: Proc(p.pid, p.ppid, p.name, p.cmdline, cpu.get(pid, 0.0))
                                      for pid, p in procs.items()}, groups=groups)

    return snap(0.0, before), snap(seconds, after)


def test_cpu_seconds_are_summed_by_group_between_two_snapshots():
    before, after = _snapshots({201: 5.0, 802: 1.0}, {201: 9.0, 802: 2.5, 301: 0.5, BENCH_PID: 1.0})
    use = machine.usage(before, after)
    assert use.by_group["web"] == pytest.approx(4.0)
    assert use.by_group["postgres"] == pytest.approx(1.5)
    assert use.by_group["worker"] == pytest.approx(0.5)
    assert use.by_group["generator"] == pytest.approx(1.0)
    assert use.cores("web") == pytest.approx(0.4)


def test_a_quiet_machine_is_not_contaminated_however_busy_the_stack_is():
    before, after = _snapshots({}, {201: 9.0, 301: 8.0, 802: 5.0, BENCH_PID: 6.0, 901: 0.9})  # other: 0.09 core
    assert machine.contamination(machine.usage(before, after)) is None


def test_more_than_a_tenth_of_a_core_outside_the_stack_is_contamination_naming_the_processes():
    before, after = _snapshots({}, {901: 0.8, 803: 0.7, 201: 9.0})  # other: 0.15 core over 10 s
    noisy = machine.contamination(machine.usage(before, after))
    assert noisy is not None
    assert [p["pid"] for p in noisy] == [901, 803]
    assert noisy[0]["name"] == "pytest tests/" and noisy[0]["cores"] == pytest.approx(0.08)


def test_cpu_steal_above_a_tenth_of_a_core_is_contamination_even_on_a_quiet_machine():
    before, after = _snapshots({}, {201: 9.0})
    before.steal, after.steal = 100.0, 101.5  # 1.5 s stolen over 10 s
    use = machine.usage(before, after)
    assert use.steal == pytest.approx(1.5)
    noisy = machine.contamination(use)
    assert noisy == [{"pid": 0, "name": "(CPU steal: the hypervisor ran other guests)", "cores": 0.15}]
    after.steal = 100.5  # 0.05 core: quiet
    assert machine.contamination(machine.usage(before, after)) is None


def test_steal_is_read_from_the_cpu_line_of_proc_stat():
    ticks = os.sysconf("SC_CLK_TCK")
    assert machine.steal_seconds(f"cpu  10 0 5 900 3 0 1 {2 * ticks} 0 0\n") == pytest.approx(2.0)
    assert machine.steal_seconds("cpu  10 0 5 900\n") == 0.0  # an old kernel: no steal field
    assert machine.steal_seconds() >= 0.0  # this machine's


def test_a_reused_pid_counts_from_zero():
    before, after = _snapshots({901: 50.0}, {901: 2.0})
    use = machine.usage(before, after)
    assert use.by_group["other"] == pytest.approx(0.0), "a smaller total is a new process: max(0, ...)"


def test_spread_is_the_median_with_min_and_max_ignoring_missing_runs():
    assert machine.spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert machine.spread([4.0, None, float("nan"), 2.0]) == {"median": 3.0, "min": 2.0, "max": 4.0, "n": 2}
    assert machine.spread([]) == {"median": None, "min": None, "max": None, "n": 0}


def test_combined_repetitions_keep_each_figures_median_and_range():
    runs = [{"rps": 100.0, "p99": 9.0, "concurrency": 4}, {"rps": 300.0, "p99": 3.0, "concurrency": 4},
            {"rps": 200.0, "p99": 5.0, "concurrency": 4}]
    combined = machine.combine(runs, ["rps", "p99"])
    assert (combined["rps"], combined["rps_min"], combined["rps_max"]) == (200.0, 100.0, 300.0)
    assert (combined["p99"], combined["p99_min"], combined["p99_max"]) == (5.0, 3.0, 9.0)
    assert combined["concurrency"] == 4 and combined["repetitions"] == 3


def test_cpu_per_request_sums_the_stack_but_not_the_generator_or_noise():
    cpu = machine.cpu_per_request({"web": 2.0, "postgres": 1.0, "redis": 0.5, "generator": 5.0, "other": 3.0},
                                  requests=1000)
    assert cpu["server"] == pytest.approx(0.0035)
    assert cpu["generator"] == pytest.approx(0.005)
    assert machine.cpu_per_request({"web": 1.0}, requests=0) == {}


def test_the_marginal_ratio_subtracts_the_noop_from_both_sides():
    # page 1.2 ms, naive 3.0 ms, no-op 1.0 ms: marginal 0.2 ms against 2.0 ms -> 0.1
    m = machine.marginal_ratio(page=0.0012, naive=0.0030, noop=0.0010)
    assert m["ratio"] == pytest.approx(0.1)
    assert (m["page_ms"], m["naive_ms"]) == (pytest.approx(0.2), pytest.approx(2.0))
    # Against the raw costs the page would look 2.5x cheaper, not 10x: the subtraction matters.
    assert 0.0012 / 0.0030 == pytest.approx(0.4)


def test_a_page_cheaper_than_the_noop_has_no_marginal_time_and_a_naive_one_as_cheap_gives_no_ratio():
    assert machine.marginal_ratio(page=0.0009, naive=0.003, noop=0.001)["ratio"] == 0.0
    assert math.isnan(machine.marginal_ratio(page=0.002, naive=0.001, noop=0.001)["ratio"])


class _ScriptedMachine(machine.Machine):
    """A machine whose one-second samples are given: each a number of cores used by a process outside the stack."""

    def __init__(self, cores: list[float]):
        said: list[str] = []
        super().__init__(roles=lambda: ROLES, say=said.append)
        self.cores, self.said = list(cores), said

    def sample(self, seconds: float = 1.0) -> machine.Usage:
        cores = self.cores.pop(0)
        return machine.Usage(seconds=1.0, by_group={"other": cores},
                             by_process={(901, "pytest tests/"): ("other", cores)})


def test_the_bench_waits_for_a_quiet_machine_and_says_what_it_waits_for(monkeypatch):
    clock = iter(range(1000))
    monkeypatch.setattr(machine.time, "monotonic", lambda: float(next(clock)))
    m = _ScriptedMachine([0.9, 0.5, 0.05])
    assert m.wait_quiet("timeline c=1 1/3", bound=60) is None
    assert m.cores == [], "it sampled until the machine was quiet"
    assert any("waiting for a quiet machine" in line and "pytest tests/" in line for line in m.said)
    assert m.log == []


def test_a_machine_busy_past_the_bound_is_measured_anyway_and_recorded(monkeypatch):
    clock = iter(range(0, 1000, 10))  # ten seconds a sample
    monkeypatch.setattr(machine.time, "monotonic", lambda: float(next(clock)))
    m = _ScriptedMachine([0.9] * 20)
    noisy = m.wait_quiet("posts c=8 2/3", bound=30)
    assert noisy == [{"pid": 901, "name": "pytest tests/", "cores": 0.9}]
    assert len(m.cores) > 15, "it gave up at the bound"
    assert m.log[0]["where"] == "posts c=8 2/3"


def test_the_speed_probe_times_python_work_and_a_round_trip_to_another_process():
    measured = machine.speed(repetitions=3, round_trips=200)
    assert set(measured) == {"python_ms", "round_trip_us"}
    # Each is a real timing: more than nothing, and far less than the probe's own time limits allow.
    assert 0 < measured["python_ms"] < 1000
    assert 0 < measured["round_trip_us"] < 100_000


def test_memory_by_group_sums_a_roots_processes_and_its_childrens():
    child = subprocess.Popen([sys.executable, "-c", "import time; b = bytearray(64 * 2**20); time.sleep(30)"])
    try:
        time.sleep(1)  # the child has its 64 MiB
        roles = Roles(roots={os.getpid(): "web"}, generator=1, database="none")
        memory = machine.memory_by_group(machine.Machine(roles=lambda: roles).snapshot(), groups=("web", "worker"))
        assert memory["web"]["processes"] >= 2  # this process and the child
        assert memory["web"]["rss_mib"] >= 64 and memory["web"]["uss_mib"] >= 64
        assert memory["web"]["pss_mib"] <= memory["web"]["rss_mib"]
        assert memory["worker"] == {"processes": 0, "rss_mib": 0.0, "pss_mib": 0.0, "uss_mib": 0.0}
    finally:
        child.kill()
        child.wait()
