"""Who uses the machine while the benchmark measures: CPU seconds by process group, and the contamination rule.

Every process on the machine falls in one group (:func:`classify`): the stack's own -- ``web``, ``worker``,
``beat``, ``redis`` (the bench's Valkey), ``postgres`` (the backends serving the bench database, and the server's
shared helpers: checkpointer, WAL writer ...), ``s3`` (the emulator) -- the ``generator`` (this process and the
tools it starts), ``kernel`` (kernel threads: softirq work the load itself causes) and ``other``: everything else,
including PostgreSQL backends serving *other* databases of a shared server.

A measurement is *contaminated* when ``other`` used more than :data:`QUIET_CORES` of a core over its window, or
when the hypervisor took as much from this machine (CPU steal, read from ``/proc/stat``: time a virtual CPU was
ready to run but another guest ran) (:func:`contamination`); the report names the processes that did.
:class:`Machine` takes the snapshots (psutil) and waits for a quiet machine before each run. The pure parts
(classification, the decision, medians and spreads, the marginal-time ratio) take plain data, so the tests can
give them any machine they like.
"""
from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

# Outside the stack and the generator, more than this many cores is contamination.
QUIET_CORES = 0.1
STACK_GROUPS = ("web", "stream", "worker", "beat", "redis", "postgres", "s3")
GROUPS = (*STACK_GROUPS, "generator", "kernel", "other")
# What the marginal server time of a request sums: the stack's groups (not the generator, nor noise).
SERVER_GROUPS = STACK_GROUPS


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    name: str
    cmdline: str  # joined with spaces; a PostgreSQL backend's is its title ("postgres: user db host(port) idle")
    cpu: float  # user + system seconds since the process started


@dataclass(frozen=True)
class Roles:
    """What the classification needs to know of the stack: the root pid of each of its processes."""

    roots: Mapping[int, str]  # pid -> group: the Procfile's processes, Valkey, the S3 emulator
    generator: int  # this process's pid: it, and what it starts that is no root, are the generator
    database: str  # the bench database: only the PostgreSQL backends serving it are the stack's


def _postgres_group(cmdline: str, database: str) -> str | None:
    """The group of a PostgreSQL process by its title, or None if it is not one."""
    if not cmdline.startswith("postgres:"):
        return None
    words = cmdline.split()
    if database in words:
        return "postgres"
    # "postgres: user db 127.0.0.1(5432) idle", "postgres: autovacuum worker db": another database's work.
    if "(" in cmdline or "autovacuum worker" in cmdline or "[local]" in cmdline:
        return "other"
    return "postgres"  # the postmaster's helpers (checkpointer, walwriter, ...) serve every database


def classify(procs: Iterable[Proc], roles: Roles) -> dict[int, str]:
    """The group of each process: a root's descendants are in its group; see the module's docstring."""
    procs = list(procs)
    parent = {p.pid: p.ppid for p in procs}
    groups: dict[int, str] = {}
    for p in procs:
        group = None
        pid, seen = p.pid, 0
        while pid and seen < 64:  # walk up to a root (64: a loop guard)
            if pid in roles.roots:
                group = roles.roots[pid]
                break
            if pid == roles.generator:
                group = "generator"
                break
            pid, seen = parent.get(pid, 0), seen + 1
        if group is None:
            if p.pid == 2 or p.ppid == 2:
                group = "kernel"
            elif p.name in ("postgres", "postmaster") or p.cmdline.startswith("postgres"):
                group = _postgres_group(p.cmdline, roles.database) or "postgres"
            else:
                group = "other"
        groups[p.pid] = group
    return groups


@dataclass
class Snapshot:
    at: float  # time.monotonic()
    procs: dict[int, Proc]
    groups: dict[int, str]
    steal: float = 0.0  # CPU seconds stolen by the hypervisor since boot, all CPUs (``/proc/stat``)


def steal_seconds(stat: str | None = None) -> float:
    """CPU steal since boot, all CPUs together, in seconds: the eighth number of ``/proc/stat``'s ``cpu`` line
    (0 where there is no such file or field)."""
    if stat is None:
        try:
            with open("/proc/stat") as f:
                stat = f.readline()
        except OSError:
            return 0.0
    fields = stat.split()
    if not fields or fields[0] != "cpu" or len(fields) < 9:
        return 0.0
    return int(fields[8]) / os.sysconf("SC_CLK_TCK")


@dataclass
class Usage:
    """CPU used between two snapshots."""

    seconds: float  # wall time
    by_group: dict[str, float]  # CPU seconds
    by_process: dict[tuple[int, str], tuple[str, float]]  # (pid, name) -> (group, CPU seconds)
    steal: float = 0.0  # CPU seconds the hypervisor gave other guests while this machine's were ready to run

    def cores(self, group: str) -> float:
        return self.by_group.get(group, 0.0) / self.seconds if self.seconds > 0 else 0.0

    def top(self, group: str = "other", n: int = 5) -> list[dict]:
        rows = sorted(((cpu, pid, name) for (pid, name), (g, cpu) in self.by_process.items() if g == group),
                      reverse=True)[:n]
        return [{"pid": pid, "name": name, "cores": round(cpu / self.seconds, 3)} for cpu, pid, name in rows
                if self.seconds > 0 and cpu > 0]


def usage(before: Snapshot, after: Snapshot) -> Usage:
    """CPU seconds between two snapshots, by group and by process. A process that appeared in between counts from
    zero; one that ended in between loses its last stretch (psutil cannot read a dead process)."""
    by_group = dict.fromkeys(GROUPS, 0.0)
    by_process = {}
    for pid, proc in after.procs.items():
        old = before.procs.get(pid)
        start = old.cpu if old is not None and old.name == proc.name else 0.0
        delta = max(0.0, proc.cpu - start)
        group = after.groups.get(pid, "other")
        by_group[group] = by_group.get(group, 0.0) + delta
        if delta:
            by_process[(pid, _short(proc))] = (group, delta)
    return Usage(seconds=after.at - before.at, by_group=by_group, by_process=by_process,
                 steal=max(0.0, after.steal - before.steal))


def _short(proc: Proc) -> str:
    return " ".join((proc.cmdline or proc.name).split())[:80]  # one line: a "python -c" script has newlines


def contamination(use: Usage, limit: float = QUIET_CORES) -> list[dict] | None:
    """None if the machine was quiet over ``use``'s window (``other`` used at most ``limit`` cores, and the
    hypervisor stole at most as much), else the processes that were not, busiest first, and the steal."""
    stolen = use.steal / use.seconds if use.seconds > 0 else 0.0
    noisy = []
    if use.cores("other") > limit:
        noisy += use.top("other") or [{"pid": 0, "name": "(processes that ended)",
                                       "cores": round(use.cores("other"), 3)}]
    if stolen > limit:
        noisy.append({"pid": 0, "name": "(CPU steal: the hypervisor ran other guests)", "cores": round(stolen, 3)})
    return noisy or None


# --- Repetitions -----------------------------------------------------------------------------------------------


def spread(values: Iterable[float | None]) -> dict:
    """The median of ``values`` with its min and max (None values, from runs without an answer, left out)."""
    xs = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not xs:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def combine(runs: list[dict], keys: Iterable[str]) -> dict:
    """Repetitions' summaries as one: each of ``keys`` the median of the runs, with ``<key>_min``/``<key>_max``;
    the other keys from the run nearest the median of the first key."""
    keys = list(keys)
    if not runs:
        return {}
    first = keys[0]
    stats = {k: spread(run.get(k) for run in runs) for k in keys}
    centre = stats[first]["median"]
    base = dict(min(runs, key=lambda r: abs((r.get(first) or 0) - (centre or 0))))
    for k, s in stats.items():
        base[k] = s["median"]
        base[f"{k}_min"], base[f"{k}_max"] = s["min"], s["max"]
    base["repetitions"] = len(runs)
    return base


def cpu_per_request(by_group: Mapping[str, float], requests: int) -> dict[str, float]:
    """CPU seconds per request of each group, and ``server``: the stack's groups summed (not the generator)."""
    if requests <= 0:
        return {}
    out = {g: by_group.get(g, 0.0) / requests for g in GROUPS}
    out["server"] = sum(out[g] for g in SERVER_GROUPS)
    return out


def marginal_ratio(*, page: float, naive: float, noop: float) -> dict:
    """The marginal server time of a timeline page over the no-op, against the naive timeline's marginal time.

    Each argument is server CPU seconds per request. Target: ``ratio`` <= 0.1 (the page's marginal cost at most a
    tenth of the naive SQL timeline's). A page cheaper than the no-op (noise) counts as zero marginal time."""
    page_marginal = max(0.0, page - noop)
    naive_marginal = naive - noop
    ratio = page_marginal / naive_marginal if naive_marginal > 0 else math.nan
    return {"page_ms": round(1000 * page_marginal, 4), "naive_ms": round(1000 * naive_marginal, 4), "ratio": ratio}


# --- How fast the machine is --------------------------------------------------------------------------------

# The echo at the far end of the round-trip probe: a byte back for each byte in, until its input closes.
_ECHO = "import os\nwhile os.read(0, 1):\n    os.write(1, b'.')"


def _python_work() -> int:
    """A fixed piece of pure-Python work (dicts, strings, a sort): what the app's own code is made of."""
    rows = [{"id": i, "name": f"user{i}", "score": (i * 7919) % 1000} for i in range(2000)]
    rows.sort(key=lambda row: row["score"])
    return sum(len(row["name"]) for row in rows)


def speed(repetitions: int = 5, round_trips: int = 2000) -> dict:
    """How fast this machine is now, for comparing runs taken on different days or machines: the median of
    ``repetitions`` timings of a fixed piece of pure-Python work (``python_ms``) and of a byte's round trip to
    another process over pipes (``round_trip_us``: two context switches and four system calls, which every
    round trip to Redis or PostgreSQL pays on top of its own work). Virtual machines differ most in the second."""
    python = []
    for _ in range(repetitions):
        began = time.perf_counter()
        _python_work()
        python.append(1000 * (time.perf_counter() - began))
    echo = subprocess.Popen([sys.executable, "-c", _ECHO], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    trips = []
    try:
        out, back = echo.stdin.fileno(), echo.stdout.fileno()
        os.write(out, b".")  # the child is up once it answers
        os.read(back, 1)
        for _ in range(repetitions):
            began = time.perf_counter()
            for _ in range(round_trips):
                os.write(out, b".")
                os.read(back, 1)
            trips.append(1e6 * (time.perf_counter() - began) / round_trips)
    finally:
        echo.stdin.close()
        echo.wait(timeout=10)
        echo.stdout.close()
    return {"python_ms": round(statistics.median(python), 3), "round_trip_us": round(statistics.median(trips), 1)}


def memory_by_group(snapshot: Snapshot, groups: Iterable[str] = ("web", "stream", "worker", "beat")
                    ) -> dict[str, dict]:
    """The memory of the processes ``snapshot`` puts in each of ``groups``: their count, and their
    RSS, PSS and USS summed, in MiB. RSS counts a page shared by forked processes once in each; PSS
    divides it among them; USS is what each holds alone."""
    import psutil

    out = {g: {"processes": 0, "rss_mib": 0.0, "pss_mib": 0.0, "uss_mib": 0.0} for g in groups}
    for pid, group in snapshot.groups.items():
        if group not in out:
            continue
        try:
            full = psutil.Process(pid).memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        row = out[group]
        row["processes"] += 1
        for key, value in (("rss_mib", full.rss), ("pss_mib", full.pss), ("uss_mib", full.uss)):
            row[key] += value / 2**20
    return {g: {k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()} for g, row in out.items()}


# --- The live machine -----------------------------------------------------------------------------------------


@dataclass
class Machine:
    """Snapshots of this machine's processes, classified for one stack."""

    roles: Callable[[], Roles]  # asked afresh at each snapshot: the stack's processes change (web restarts)
    say: Callable[[str], None] = print
    log: list[dict] = field(default_factory=list)  # every wait and every contaminated window, for the report

    def snapshot(self) -> Snapshot:
        import psutil

        procs = {}
        for p in psutil.process_iter(["pid", "ppid", "name", "cmdline", "cpu_times"]):
            info = p.info
            times = info.get("cpu_times")
            if times is None:
                continue
            cmdline = " ".join(info.get("cmdline") or []) or (info.get("name") or "")
            procs[info["pid"]] = Proc(info["pid"], info.get("ppid") or 0, info.get("name") or "", cmdline,
                                      times.user + times.system)
        return Snapshot(at=time.monotonic(), procs=procs, groups=classify(procs.values(), self.roles()),
                        steal=steal_seconds())

    def sample(self, seconds: float = 1.0) -> Usage:
        before = self.snapshot()
        time.sleep(seconds)
        return usage(before, self.snapshot())

    def wait_quiet(self, label: str, bound: float) -> list[dict] | None:
        """Wait (at most ``bound`` seconds) until processes outside the stack and the generator use at most
        :data:`QUIET_CORES`; None once quiet, else the busiest processes when the bound ran out."""
        started = time.monotonic()
        waited = False
        while True:
            use = self.sample(1.0)
            noisy = contamination(use)
            if noisy is None:
                if waited:
                    self.say(f"  machine quiet after {time.monotonic() - started:.0f} s")
                return None
            elapsed = time.monotonic() - started
            names = ", ".join(f"{p['name'][:40]} ({p['cores']:.2f})" for p in noisy[:3])
            if elapsed >= bound:
                self.say(f"  still busy after {elapsed:.0f} s ({use.cores('other'):.2f} cores outside the stack: "
                         f"{names}): measuring anyway, marked contaminated")
                self.log.append({"where": label, "when": "before", "other_cores": round(use.cores("other"), 3),
                                 "processes": noisy})
                return noisy
            self.say(f"  waiting for a quiet machine before {label} ({elapsed:.0f}/{bound:.0f} s): "
                     f"{use.cores('other'):.2f} cores outside the stack: {names}")
            waited = True


def own_pid() -> int:
    return os.getpid()
