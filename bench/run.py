"""`make bench`: seed a data set, start the production stack, measure it beside its baselines, write a report.

    .venv/bin/python -m bench.run [--quick] [--out bench/results/<date>] [--phases ...] [--fresh-data]

Everything runs on this machine: a fresh PostgreSQL database (``timeline_bench``
on the configured server, or an embedded one), a Valkey server of the bench's
own (so it can be flushed and measured), the Procfile's web, worker and beat
started as ``make run`` starts them (under ``bench.settings``: production's,
plus the baseline endpoints and ``seed_bench``), and the load generator
(``bench/loadgen.py``) in this process, whose CPU use is reported beside each
figure. The report (``report.md``, ``report.json`` and PNG plots) goes to
``bench/results/<date>/``.

Trust before figures (``docs/performance.md``): before each measured run the
bench waits for a quiet machine (``bench/machine.py``: nothing outside the
stack and the generator above a tenth of a core), and a run measured on a busy
machine all the same marks the report CONTAMINATED, naming the processes. Each
run records the CPU seconds of each process group; each figure is the median
of three repetitions, shown with its min–max. A data set seeded with the same
arguments is reused (reset to its seeded state) unless ``--fresh-data``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests

from bench import backing, loadgen, machine, memory, profiles
from bench.loadgen import Request
from stack import common, procfile, services

REPO = Path(__file__).resolve().parent.parent

PROFILES = {
    # users, tweets, celebrity threshold, active share; seconds per measured run, closed-loop concurrencies,
    # repetitions of each run, seconds of the 100:1 mix and its read rate, at most this many seconds of waiting
    # for a quiet machine before one run, and in all; the stream phase's connections held, its author's followers
    # among them, the author's posts at each connection count and their spacing (s), their spacing during the mix
    # (wider: the posts go on for the whole mix, and each is followers events to write), and connections opened a
    # second; the script ceiling's timelines (copies of cached ones) and the tweets it writes into each a run; the
    # cluster phase's timelines (copies of cached ones, on a 3-master cluster and one server) and fan-outs into them.
    "full": {"users": 100_000, "tweets": 1_000_000, "threshold": 50_000, "active": 0.2, "seconds": 8,
             "concurrency": [1, 4, 16], "repetitions": 3, "mix_seconds": 10, "mix_rate": 155,
             "quiet_wait": 60, "quiet_budget": 600, "web_concurrency": 16,
             "stream_connections": 10_000, "stream_followers": 5_000, "stream_posts": 20, "stream_interval": 1.0,
             "stream_mix_interval": 2.0, "stream_open_rate": 300, "ceiling_timelines": 10_000, "ceiling_rounds": 20,
             "cluster_timelines": 10_000, "cluster_rounds": 15},
    "quick": {"users": 10_000, "tweets": 100_000, "threshold": 5_000, "active": 0.2, "seconds": 2,
              "concurrency": [1, 8], "repetitions": 3, "mix_seconds": 3, "mix_rate": 155,
              "quiet_wait": 3, "quiet_budget": 20, "web_concurrency": 8,
              "stream_connections": 2_000, "stream_followers": 1_000, "stream_posts": 5, "stream_interval": 1.0,
              "stream_mix_interval": 2.0, "stream_open_rate": 400, "ceiling_timelines": 2_000, "ceiling_rounds": 5,
              "cluster_timelines": 10_000, "cluster_rounds": 7},
}
HOST = "127.0.0.1"
DATABASE = "timeline_bench"
NOT_REUSABLE = 3  # seed_bench's exit code when the database holds another data set (seed_bench.NOT_REUSABLE)
# The figures a repeated run keeps as medians with their spread.
SPREAD_KEYS = ("rps", "p50", "p90", "p95", "p99", "max", "mean", "errors", "cpu_share", "server_cpu_ms")
# The stream phase measures at these shares of its connections.
STREAM_LEVELS = (0.1, 0.25, 0.5, 1.0)
# The web servers the webserver phase compares: (label, environment of the Procfile's web command).
WEB_SERVERS = {
    "gunicorn sync": {"WEB_SERVER": "gunicorn", "WEB_WORKER_CLASS": "sync", "WEB_THREADS": "1"},
    "gunicorn gthread": {"WEB_SERVER": "gunicorn", "WEB_WORKER_CLASS": "gthread", "WEB_THREADS": "4"},
    "granian": {"WEB_SERVER": "granian"},
}


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Bench:
    def __init__(self, profile: str, out: Path, *, reuse: bool = True, database: str = DATABASE,
                 stream_connections: int | None = None, stream_followers: int | None = None):
        self.name, self.p, self.out, self.reuse = profile, PROFILES[profile], out, reuse
        self.database = database
        # The stream phase's connections and followers: the profile's, unless given.
        self.stream_size = (stream_connections or self.p["stream_connections"],
                            stream_followers or self.p["stream_followers"])
        self.cleanup = contextlib.ExitStack()
        self.results: dict = {"meta": {"profile": profile, "started": datetime.now(UTC).isoformat(timespec="seconds"),
                                       "cpus": common.cpu_count(), "python": platform.python_version(),
                                       "machine": platform.machine(), "repetitions": self.p["repetitions"],
                                       "seconds_per_run": self.p["seconds"]},
                              "contamination": [], "phase_cpu": {}}
        self.data_dir = REPO / ".data" / "bench"
        self.latencies: dict[str, list[float]] = {}
        self.roots: dict[int, str] = {}
        self.machine = machine.Machine(roles=self._roles, say=say)
        self.quiet_left = float(self.p["quiet_budget"])

    # --- Setting up ------------------------------------------------------------------

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        started = backing.start(database=self.database, data_dir=self.data_dir, cleanup=self.cleanup, s3_port=8790,
                                keep=self.reuse)
        self.db_url, self.redis_port = started.database_url, started.redis_port
        self._find_backing_processes(started)
        self.port = common.pick_port(8700)
        # The stream process's port, chosen here (not left to the Procfile's PORT + 1) and recorded.
        self.stream_port = common.pick_port(self.port + 1)
        self.results["meta"]["ports"] = {"web": self.port, "stream": self.stream_port}
        self.env = os.environ | started.env() | {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "SECRET_KEY": secrets.token_urlsafe(40),
            "PORT": str(self.port),
            "STREAM_PORT": str(self.stream_port),
            "TIMELINE_CELEBRITY_THRESHOLD": str(self.p["threshold"]),
            "JWT_ACCESS_MINUTES": "600",
        }
        say(f"database {self.database} on {services.redact(self.db_url)}; Valkey on port {self.redis_port}")
        backing.prepare(self.env)
        manifest = self.out / "manifest.json"
        say(f"data set ({self.p['users']:,} users, {self.p['tweets']:,} tweets): "
            + ("reused if already seeded with the same arguments" if self.reuse else "seeding afresh"))
        seed = ["seed_bench", f"--users={self.p['users']}", f"--tweets={self.p['tweets']}",
                f"--threshold={self.p['threshold']}", f"--active={self.p['active']}", f"--manifest={manifest}",
                f"--cache-snapshot={self.data_dir / f'cache-{self.name}.pickle'}"]
        try:
            backing.manage(self.env, *seed, *(["--reuse"] if self.reuse else []))
        except subprocess.CalledProcessError as exc:
            if exc.returncode != NOT_REUSABLE:
                raise
            say(f"{self.database} holds another data set: emptying it and seeding afresh")
            backing.recreate(self.db_url)
            backing.prepare(self.env)
            backing.manage(self.env, *seed)
        self.manifest = json.loads(manifest.read_text())
        manifest.unlink()  # thousands of user ids: the report keeps the data set's summary instead
        self.results["meta"]["dataset"] = {k: v for k, v in self.manifest.items() if k not in ("active", "password")}
        self.results["meta"]["dataset"]["active_users"] = len(self.manifest["active"])
        os.environ.update(self.env)
        import django

        django.setup()
        from django.db import connection

        from bench.apis import ensure_bare_table

        with connection.cursor() as cursor:
            ensure_bare_table(cursor)
        self.logs = self.out / "logs"
        self.logs.mkdir(exist_ok=True)
        self.child_env = procfile.process_env(self.env, self.data_dir)
        commands = procfile.load(env=self.child_env)
        self.results["meta"]["stack"] = {name: " ".join(procfile.expanded(command, self.child_env))
                                         for name, command in commands.items()}
        self.procs = {name: procfile.start(command, self.child_env, stdout=(self.logs / f"{name}.log").open("w"),
                                           stderr=subprocess.STDOUT) for name, command in commands.items()}
        self.cleanup.callback(common.stop_processes, self.procs)
        self._wait_ready()

    def _find_backing_processes(self, started: backing.Backing) -> None:
        """The bench's own Valkey and S3 emulator are our children: their groups, not the generator's."""
        import psutil

        s3_port = started.s3_endpoint.rsplit(":", 1)[-1].strip("/")
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                cmdline = " ".join(child.cmdline())
                if "valkey-server" in cmdline and str(self.redis_port) in cmdline:
                    self.roots[child.pid] = "redis"
                elif "moto.server" in cmdline and s3_port in cmdline:
                    self.roots[child.pid] = "s3"

    def _roles(self) -> machine.Roles:
        roots = dict(self.roots)
        for name, proc in getattr(self, "procs", {}).items():
            roots[proc.pid] = name if name in machine.STACK_GROUPS else "worker"
        return machine.Roles(roots=roots, generator=machine.own_pid(), database=self.database)

    def _wait_ready(self) -> None:
        import requests

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"http://{HOST}:{self.port}/readyz", timeout=2).status_code == 200:
                    say(f"stack ready on port {self.port}")
                    return
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise SystemExit(f"{name} exited with code {proc.returncode}: see {self.logs / name}.log")
            time.sleep(0.5)
        raise SystemExit("the stack did not become ready within 60 s")

    def restart(self, name: str, extra_env: dict[str, str], label: str) -> str:
        """Stop one of the Procfile's processes and start its command again with ``extra_env``; the command."""
        common.stop_processes({name: self.procs[name]})
        env = self.child_env | extra_env
        command = procfile.load(env=env)[name]
        log = self.logs / f"{name}-{label.replace(' ', '-')}.log"
        self.procs[name] = procfile.start(command, env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        if name == "web":
            self._wait_ready()
        return " ".join(procfile.expanded(command, env))

    def restart_web(self, extra_env: dict[str, str], label: str) -> str:
        """Stop the web server and start the Procfile's web command again with ``extra_env``."""
        return self.restart("web", extra_env, label)

    # --- Helpers ---------------------------------------------------------------------

    def token(self, user_id: int) -> str:
        from rest_framework_simplejwt.tokens import AccessToken

        token = AccessToken()
        token["user_id"] = user_id
        return str(token)

    def readers(self, user_ids: list[int], path: str):
        headers = [{"Authorization": f"Bearer {self.token(u)}"} for u in user_ids]

        def make() -> Request:
            return Request("GET", path, random.choice(headers))

        return make

    def closed(self, make, concurrency: int, seconds: float | None = None) -> loadgen.Result:
        return loadgen.closed_loop(HOST, self.port, make, concurrency=concurrency,
                                   duration=seconds or self.p["seconds"], warmup=0.5)

    def open(self, make, rate: float, seconds: float | None = None) -> loadgen.Result:
        return loadgen.open_loop(HOST, self.port, make, rate=rate, duration=seconds or self.p["seconds"], warmup=0.5)

    @contextlib.contextmanager
    def phase(self, name: str, title: str):
        """A phase of the run: announced, and its CPU seconds by process group recorded."""
        say(f"== {name}: {title}")
        before = self.machine.snapshot()
        started = time.monotonic()
        try:
            yield
        finally:
            use = machine.usage(before, self.machine.snapshot())
            self.results["phase_cpu"][name] = {"seconds": round(use.seconds, 1),
                                               **{g: round(c, 2) for g, c in use.by_group.items()}}
            say(f"   {name} took {time.monotonic() - started:.0f} s")

    def quiet(self, label: str) -> None:
        """Wait for a quiet machine before a measured run (within the profile's bounds)."""
        bound = min(self.p["quiet_wait"], self.quiet_left)
        if bound <= 0:  # the waiting budget is spent: the check during the run still marks contamination
            return
        started = time.monotonic()
        noisy = self.machine.wait_quiet(label, bound)
        self.quiet_left = max(0.0, self.quiet_left - (time.monotonic() - started))
        if noisy:
            self.results["contamination"].append({"run": label, "when": "before", "processes": noisy})

    def measured(self, label: str, run: Callable[[], loadgen.Result]) -> dict:
        """One measured run: a quiet machine first, the CPU of each process group meanwhile."""
        self.quiet(label)
        before = self.machine.snapshot()
        result = run()
        use = machine.usage(before, self.machine.snapshot())
        s = result.summary()
        cpu = machine.cpu_per_request(use.by_group, result.completed)
        s["cpu_ms_per_request"] = {g: round(1000 * v, 4) for g, v in cpu.items()}
        s["server_cpu_ms"] = s["cpu_ms_per_request"].get("server")
        s["cpu_s"] = {g: round(v, 3) for g, v in use.by_group.items()}
        s["steal_s"] = round(use.steal, 3)
        noisy = machine.contamination(use)
        if noisy:
            s["contaminated"] = noisy
            self.results["contamination"].append({"run": label, "when": "during",
                                                  "other_cores": round(use.cores("other"), 3),
                                                  "steal_s": round(use.steal, 3), "processes": noisy})
        s["_latencies"] = result.latencies_ms
        return s

    def repeat(self, label: str, run: Callable[[], loadgen.Result], *, keep_latencies: str | None = None) -> dict:
        """``run`` repeated (the profile's repetitions); the medians, each with its min and max."""
        return self.interleaved({label: run}, keep_latencies={label: keep_latencies} if keep_latencies else None)[label]

    def interleaved(self, runs: dict[str, Callable[[], loadgen.Result]], *, at_least: int = 0,
                    ratio: Ratio | None = None, keep_latencies: dict[str, str] | None = None) -> dict[str, dict]:
        """Each of ``runs`` once a repetition, in turn, so that a slow stretch of the machine touches them alike;
        the medians of each, with their min and max. The profile's repetitions, or ``at_least``; and when the
        repetitions' ``ratio`` lies on both sides of its goal, more, up to :data:`DECIDING_REPETITIONS`."""
        done: dict[str, list[dict]] = {name: [] for name in runs}
        wanted = max(self.p["repetitions"], at_least)
        k = 0
        while k < wanted or (k < DECIDING_REPETITIONS and ratio is not None and ratio.undecided(done)):
            k += 1
            for label, run in runs.items():
                s = self.measured(f"{label} {k}", run)
                say(f"  {label} {k}: {s['rps']:.0f} req/s, p50 {_f(s['p50'])} ms, p99 {_f(s['p99'])} ms, "
                    f"errors {s['errors']}, server CPU {_f(s['server_cpu_ms'], 2)} ms/req, generator "
                    f"{100 * s['cpu_share']:.0f}% of a core" + (" [CONTAMINATED]" if "contaminated" in s else ""))
                done[label].append(s)
        results = {}
        for label, measured in done.items():
            combined = machine.combine(measured, SPREAD_KEYS)
            if keep_latencies and keep_latencies.get(label):
                self.latencies[keep_latencies[label]] = combined["_latencies"]
            combined.pop("_latencies", None)
            combined["runs"] = [{k: v for k, v in r.items() if k in ("rps", "p50", "p99", "errors", "server_cpu_ms",
                                                                       "contaminated")} for r in measured]
            results[label] = combined
        return results

    def _drain_fanout(self, timeout: float = 120) -> None:
        from timelines.models import PendingFanout

        deadline = time.monotonic() + timeout
        while PendingFanout.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.1)

    # --- Measurements ----------------------------------------------------------------

    TIMELINE = "/v1/timeline/home?limit=20"

    def measure_reads(self) -> None:
        with self.phase("reads", "timeline reads beside the no-op and the naive SQL timeline (closed loop)"):
            active = self.manifest["active"]
            endpoints = {"timeline": self.TIMELINE, "ping": "/v1/bench/ping",
                         "naive": "/v1/bench/naive-timeline?limit=20"}
            reads: dict[str, list] = {name: [] for name in endpoints}
            makes = {name: self.readers(active, path) for name, path in endpoints.items()}
            for name, make in makes.items():
                self.closed(make, 8, seconds=2)  # warm the caches and connections
                for concurrency in self.p["concurrency"]:
                    label = f"{name} c={concurrency}"
                    reads[name].append(self.repeat(label, lambda: self.closed(make, concurrency),  # noqa: B023
                                                   keep_latencies=f"{name} (closed, c={concurrency})"))
            self.results["reads_closed"] = reads
            # One connection, the timeline beside the no-op: interleaved, at least five times (a p50 ratio near
            # its goal needs more than three runs of each to say which side it is on).
            paired = self.interleaved({f"{name} c=1, paired": lambda m=makes[name]: self.closed(m, 1)
                                       for name in ("timeline", "ping")}, at_least=DECIDING_REPETITIONS)
            self.results["p50_c1_paired"] = {name: paired[f"{name} c=1, paired"] for name in ("timeline", "ping")}
            # The marginal server time of a page, every endpoint at one open-loop rate (half the naive
            # timeline's best), so that each is measured under the same load.
            rate = round(max(x["rps"] for x in reads["naive"]) / 2)
            matched = self.interleaved({f"{name} open {rate}/s": lambda m=make: self.open(m, rate)
                                        for name, make in makes.items()})
            self.results["marginal_matched"] = {"rate": rate, **{name: matched[f"{name} open {rate}/s"]
                                                                 for name in makes}}

    def measure_growth(self) -> None:
        """How a read's cost grows: with the reader's followees, and with the page's depth."""
        from bench import store_probes

        with self.phase("growth", "read latency against followees and page depth (1 connection)"):
            rows = []
            for count, user in sorted(self.manifest.get("followee_probes", {}).items(), key=lambda kv: int(kv[0])):
                make = self.readers([user], self.TIMELINE)
                self.closed(make, 1, seconds=1)
                s = self.repeat(f"reader of {int(count):,} followees", lambda: self.closed(make, 1))  # noqa: B023
                rows.append({"followees": int(count), **s})
            self.results["followee_growth"] = rows

            users = self.manifest["active"][:2000]
            floors = store_probes.cached_floors(user_ids=users)
            middles = {u: ids[len(ids) // 2] for u, ids in store_probes.heads(user_ids=users, count=800).items()
                       if len(ids) >= 100}
            headers = {u: {"Authorization": f"Bearer {self.token(u)}"} for u in set(floors) | set(middles)}

            def pages(cursors: dict[int, int | None]):
                items = list(cursors.items())

                def make() -> Request:
                    user, cursor = random.choice(items)
                    suffix = f"&cursor={cursor}" if cursor else ""
                    return Request("GET", f"{self.TIMELINE}{suffix}", headers[user])

                return make

            depth = {"first page": {u: None for u in middles}, "inside the cache": middles,
                     "past the cache": floors}
            self.results["depth_growth"] = []
            for label, cursors in depth.items():
                if not cursors:
                    continue
                make = pages(cursors)
                s = self.repeat(f"{label}", lambda: self.closed(make, 1))  # noqa: B023
                self.results["depth_growth"].append({"page": label, "users": len(cursors), **s})

    def measure_posts(self) -> None:
        with self.phase("posts", "POST /v1/tweets: closed loop, then open loop at half its maximum"):
            from social.models import User

            threshold = self.p["threshold"]
            # Posters are active users, whose sessions (the cached author summary) are warm as in production:
            # someone posting has been using the app.
            authors = list(User.objects.filter(followers_count__lt=threshold // 10, followers_count__gte=20,
                                               id__in=self.manifest["active"])
                           .values_list("id", flat=True)[:2000])
            make_post, make_bare = self._poster(authors), self._poster(authors, "/v1/bench/bare-insert")
            # Beside its floor: the same authentication and one durable INSERT, no id, no fan-out.
            pair = self.interleaved({"posts c=8": lambda: self.closed(make_post, 8),
                                     "bare insert c=8": lambda: self.closed(make_bare, 8)},
                                    ratio=Ratio("posts c=8", "bare insert c=8", "rps", 0.5))
            self.results["posts_closed"] = closed = pair["posts c=8"]
            self.results["bare_insert_closed"] = pair["bare insert c=8"]
            self._drain_fanout()
            rate = closed["rps"] / 2
            self.results["posts_open"] = self.repeat(f"posts open loop {rate:.0f}/s",
                                                     lambda: self._after_drain(lambda: self.open(make_post, rate)),
                                                     keep_latencies="POST /v1/tweets (open)")
            self._drain_fanout()

    def _after_drain(self, run):
        self._drain_fanout()
        return run()

    def _poster(self, authors: list[int], path: str = "/v1/tweets"):
        headers = [{"Authorization": f"Bearer {self.token(u)}"} for u in authors]
        counter = iter(range(10**9))

        def make_post() -> Request:
            return Request("POST", path, random.choice(headers),
                           json.dumps({"content": f"bench post #tag{next(counter) % 7} @b1 https://example.com/x "
                                                  f"{next(counter)}"}).encode())

        return make_post

    def measure_fanout(self) -> None:
        with self.phase("fanout", "fan-out: post to fully delivered by follower count, beside pipelined LPUSH"):
            import requests

            from bench import fanout_timings
            from social.models import Follow
            from timelines import store
            from timelines.models import PendingFanout

            timings = fanout_timings.fanout_timings
            rows = []
            probes = [(int(k), v, False) for k, v in self.manifest["probes"].items()]
            probes += [(int(k), v, True) for k, v in self.manifest.get("all_active_probes", {}).items()]
            n = self.p["repetitions"]
            # The timings cost the worker a round trip a batch: recorded in this phase only (bench/settings.py).
            self.restart("worker", {"BENCH_FANOUT_TIMINGS": "1"}, "fanout-timings")
            self._worker_ready(min(probes)[1])
            self.results["fanout_timings_recorded"] = True
            for count, author, all_active in sorted(probes):
                followers = list(Follow.objects.filter(followee_id=author).values_list("follower_id", flat=True))
                live = len(store.existing(user_ids=followers)) + 1
                pulled = len(followers) >= self.p["threshold"]
                session = requests.Session()
                session.headers["Authorization"] = f"Bearer {self.token(author)}"
                runs = []
                for k in range(1, n + 1):
                    self._drain_fanout()
                    self.quiet(f"fan-out {count:,} {k}/{n}")
                    before, commands = self.machine.snapshot(), self._commandstats()
                    started = time.perf_counter()
                    r = session.post(f"http://{HOST}:{self.port}/v1/tweets", json={"content": f"fan-out probe {k}"})
                    tweet_id = int(r.json()["tweet_id"])
                    while PendingFanout.objects.filter(tweet_id=tweet_id).exists():
                        time.sleep(0.002)
                    seconds = time.perf_counter() - started
                    use = machine.usage(before, self.machine.snapshot())
                    scripts = _scripts(commandstats_delta(commands, self._commandstats()))
                    breakdown = None
                    if timings is not None:  # recorded by the last batch: it may land just after the row goes
                        deadline = time.monotonic() + (0 if pulled else 2)  # a pulled tweet records none
                        while True:
                            with contextlib.suppress(Exception):  # a read of the record: never fail the run
                                breakdown = timings(tweet_id=tweet_id)
                            if breakdown is not None or time.monotonic() >= deadline:
                                break
                            time.sleep(0.01)
                    noisy = machine.contamination(use)
                    if noisy:
                        self.results["contamination"].append({"run": f"fan-out {count:,} {k}/{n}", "when": "during",
                                                              "other_cores": round(use.cores("other"), 3),
                                                              "steal_s": round(use.steal, 3), "processes": noisy})
                    runs.append({"seconds": seconds, "deliveries_per_s": None if pulled else live / seconds,
                                 "timings": breakdown, "scripts": scripts,
                                 "server_cpu_s": sum(use.by_group.get(g, 0.0) for g in machine.SERVER_GROUPS)})
                    say(f"  {len(followers):,} followers ({live:,} cached{', all active' if all_active else ''}"
                        f"{', pulled' if pulled else ''}) {k}/{n}: {1000 * seconds:.0f} ms, "
                        + ("written to no follower's timeline" if pulled else f"{live / seconds:,.0f} deliveries/s")
                        + f", {scripts['calls']:,} script calls ({scripts['usec'] / 1000:.1f} ms in Redis)"
                        + (f", {_timings_line(breakdown)}" if breakdown else ""))
                sec = machine.spread(r["seconds"] for r in runs)
                rows.append({"followers": len(followers), "cached_timelines": live, "all_active": all_active,
                             "pulled": pulled, "seconds": sec["median"], "seconds_min": sec["min"],
                             "seconds_max": sec["max"],
                             # a pulled tweet is written to no follower's timeline: there is no delivery rate
                             "deliveries_per_s": None if pulled else round(live / sec["median"]),
                             "server_cpu_s": machine.spread(r["server_cpu_s"] for r in runs)["median"],
                             "timings": _median_timings([r["timings"] for r in runs]),
                             "script_calls": machine.spread(r["scripts"]["calls"] for r in runs)["median"],
                             "script_ms": machine.spread(r["scripts"]["usec"] / 1000 for r in runs)["median"],
                             "runs": [{k: v for k, v in r.items()} for r in runs]})
            self.results["fanout"] = rows
            self.restart("worker", {}, "default")
            self._worker_ready(min(probes)[1])
            ceilings = [self._lpush_ceiling() for _ in range(n)]
            ops = machine.spread(c["ops_per_s"] for c in ceilings)
            self.results["lpush_ceiling"] = {"tool": ceilings[0]["tool"], "ops_per_s": ops["median"],
                                             "ops_per_s_min": ops["min"], "ops_per_s_max": ops["max"]}
            say(f"  raw pipelined LPUSH on the same server: {ops['median']:,.0f}/s "
                f"({ops['min']:,.0f}–{ops['max']:,.0f}; {ceilings[0]['tool']})")
            self.results["script_ceiling"] = self._script_ceiling()

    def _script_ceiling(self) -> dict:
        """The production insert script from one client on copies of real cached timelines, interleaved with
        pipelined LPUSH on the same keys (``bench.ceilings``): timelines a second, medians with their spread."""
        import redis

        from bench import ceilings
        from timelines import store

        users = store.existing(user_ids=self.manifest["active"])[: self.p["ceiling_timelines"]]
        if not users:
            say("  no cached timelines to copy: no script ceiling")
            return {}
        keys = store.timeline_keys(users)
        source = redis.Redis(host=HOST, port=self.redis_port)
        target = redis.Redis(host=HOST, port=self.redis_port, db=3)  # not the app's db 0, nor the LPUSH tool's 2
        sizes = [source.memory_usage(key) or 0 for key in keys[:200]]
        rounds, n = self.p["ceiling_rounds"], self.p["repetitions"]
        runs: dict[str, list[float]] = {"script": [], "lpush": []}
        try:
            for k in range(1, n + 1):
                for name, measure in (("script", ceilings.script_ceiling), ("lpush", ceilings.lpush_ceiling)):
                    copied = ceilings.copy_timelines(source, target, keys)
                    self.quiet(f"{name} ceiling {k}/{n}")
                    runs[name].append(measure(target, copied, rounds))
                say(f"  {len(copied):,} timelines ({statistics.mean(sizes):,.0f} B each), {rounds} tweets into each,"
                    f" {k}/{n}: insert script {runs['script'][-1]:,.0f}/s, pipelined LPUSH {runs['lpush'][-1]:,.0f}/s")
        finally:
            target.flushdb()
        script, lpush = machine.spread(runs["script"]), machine.spread(runs["lpush"])
        return {"timelines": len(copied), "mean_bytes": round(statistics.mean(sizes)), "rounds": rounds,
                "script_per_s": script, "lpush_per_s": lpush,
                "script_vs_lpush": round(script["median"] / lpush["median"], 3)}

    def measure_cluster(self) -> None:
        with self.phase("cluster", "the same fan-out on a 3-master Redis Cluster and on one server"):
            import redis

            from bench import cluster_fanout
            from timelines import store

            users = store.existing(user_ids=self.manifest["active"])[: self.p["cluster_timelines"]]
            lists = cluster_fanout.read_lists(redis.Redis(host=HOST, port=self.redis_port), store.timeline_keys(users))
            if not lists:
                say("  no cached timelines to copy: synthetic ones")
            self.results["cluster_fanout"] = cluster_fanout.measure(
                timelines=self.p["cluster_timelines"], rounds=self.p["cluster_rounds"], lists=lists or None,
                say=say, before_timing=lambda: self.quiet("cluster fan-out"))

    def _worker_ready(self, author: int, timeout: float = 120) -> None:
        """Wait until a (re)started worker delivers: one post by ``author`` fanned out (not measured)."""
        import requests

        from timelines.models import PendingFanout

        r = requests.post(f"http://{HOST}:{self.port}/v1/tweets", json={"content": "the worker is ready"},
                          headers={"Authorization": f"Bearer {self.token(author)}"}, timeout=30)
        tweet_id, deadline = int(r.json()["tweet_id"]), time.monotonic() + timeout
        while PendingFanout.objects.filter(tweet_id=tweet_id).exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"the worker delivered nothing within {timeout:.0f} s: see {self.logs}/worker*.log")
            time.sleep(0.05)

    def _commandstats(self) -> dict[str, tuple[int, int]]:
        import redis

        return commandstats(redis.Redis(host=HOST, port=self.redis_port))

    def _lpush_ceiling(self) -> dict:
        self.quiet("LPUSH ceiling")
        import redis

        client = redis.Redis(host=HOST, port=self.redis_port, db=2)  # not the app's db 0: its memory is weighed
        tool = shutil.which("redis-benchmark") or shutil.which("valkey-benchmark")
        if tool:
            out = subprocess.run([tool, "-h", HOST, "-p", str(self.redis_port), "--dbnum", "2", "-t", "lpush",
                                  "-P", "64", "-n", "2000000", "-r", "100000", "-q", "--csv"],
                                 capture_output=True, text=True).stdout
            client.flushdb()
            match = re.search(r'"LPUSH[^"]*","([\d.]+)"', out)
            if match:
                return {"tool": "redis-benchmark -t lpush -P 64 -n 2000000 -r 100000", "ops_per_s": float(match[1])}
        started, count = time.perf_counter(), 0
        while time.perf_counter() - started < 2:
            pipe = client.pipeline(transaction=False)
            for i in range(1000):
                pipe.lpush(f"bench:lpush:{i % 100}", i)
            pipe.execute()
            count += 1000
        client.flushdb()
        return {"tool": "redis-py pipelined LPUSH, 1000 per round trip (no redis-benchmark on this machine)",
                "ops_per_s": count / (time.perf_counter() - started)}

    def measure_mix(self) -> None:
        rate = self.p["mix_rate"]
        with self.phase("mix", f"a 100:1 read/write mix, open loop: {rate} reads/s and {rate / 100} posts/s"):
            mix, latencies, delays = self._mix("mix")
            self.latencies[f"timeline (open, {rate}/s, in the mix)"] = latencies
            self.latencies["propagation (post to visible)"] = delays
            self.results["propagation"] = mix

    def _mix(self, label: str) -> tuple[dict, list[float], list[float]]:
        """The 100:1 mix, the profile's repetitions: its reads and writes (medians with their spread), post to
        visible; and the reads' latencies and the delays, all repetitions together."""
        rate = self.p["mix_rate"]
        runs = [self._mix_once(rate, k, label) for k in range(1, self.p["repetitions"] + 1)]
        reads = machine.combine([r["reads"] for r in runs], SPREAD_KEYS)
        writes = machine.combine([r["writes"] for r in runs], SPREAD_KEYS)
        latencies = reads.pop("_latencies", [])
        writes.pop("_latencies", None)
        delays = sorted(d for r in runs for d in r["delays"])
        p99 = machine.spread(r["p99_ms"] for r in runs)
        return {"reads": reads, "writes": writes, "samples": len(delays), "p50_ms": _pct(delays, 50),
                "p99_ms": p99["median"], "p99_ms_min": p99["min"], "p99_ms_max": p99["max"],
                "max_ms": delays[-1] if delays else None}, latencies, delays

    def _mix_once(self, read_rate: float, k: int, label: str = "mix") -> dict:
        from django.contrib.postgres.aggregates import ArrayAgg

        from bench import store_probes
        from social.models import Follow

        active = set(self.manifest["active"])
        authors = (Follow.objects.filter(followee__followers_count__range=(20, self.p["threshold"] // 10))
                   .values("followee_id").annotate(followers=ArrayAgg("follower_id"))
                   .values_list("followee_id", "followers")[:3000])
        watched = {a: [f for f in fs if f in active][:3] for a, fs in authors}
        watched = {a: fs for a, fs in watched.items() if fs}
        authors = list(watched)
        headers = {a: {"Authorization": f"Bearer {self.token(a)}"} for a in authors}
        posted: list[tuple[int, float, int]] = []  # (tweet id, posted at, author)
        lock = threading.Lock()

        def make_post() -> Request:
            author = random.choice(authors)
            return Request("POST", "/v1/tweets", headers[author] | {"X-Author": str(author)},
                           json.dumps({"content": "propagation probe"}).encode())

        def on_post(request: Request, status: int, body: bytes, latency_ms: float) -> None:
            if status == 201:
                with lock:
                    posted.append((int(json.loads(body)["tweet_id"]), time.monotonic(),
                                   int(request.headers["X-Author"])))

        delays: list[float] = []
        stop = threading.Event()

        def watch() -> None:
            pending: list[tuple[int, float, list[int]]] = []
            while not stop.is_set() or pending:
                with lock:
                    fresh, posted[:] = posted[:], []
                pending += [(t, at, watched[a]) for t, at, a in fresh]
                still = []
                for tweet_id, at, followers in pending:
                    if all(tweet_id in ids for ids in store_probes.heads(user_ids=followers, count=21).values()):
                        delays.append(1000 * (time.monotonic() - at))
                    elif time.monotonic() - at < 30:
                        still.append((tweet_id, at, followers))
                pending = still
                time.sleep(0.005)

        read = self.readers(self.manifest["active"], self.TIMELINE)
        seconds = self.p["mix_seconds"]
        n = self.p["repetitions"]

        def run() -> loadgen.Result:
            watcher.start()
            reads, writes = loadgen.run_concurrently(
                loadgen.open_loop_async(HOST, self.port, read, rate=read_rate, duration=seconds, warmup=0.5),
                loadgen.open_loop_async(HOST, self.port, make_post, rate=read_rate / 100, duration=seconds,
                                        warmup=0.5, on_response=on_post),
            )
            stop.set()
            watcher.join(timeout=40)
            out["writes"] = writes
            return reads

        watcher = threading.Thread(target=watch, daemon=True)
        out: dict = {}
        self._drain_fanout()
        reads = self.measured(f"{label} {k}/{n}", run)
        writes = out["writes"].summary() | {"_latencies": out["writes"].latencies_ms}
        delays.sort()
        say(f"  {label} {k}/{n}: reads {reads['rps']:.0f}/s p50 {_f(reads['p50'])} ms p99 {_f(reads['p99'])} ms; "
            f"posts p99 {_f(writes['p99'])} ms; post to visible p99 {_pct(delays, 99):.0f} ms ({len(delays)} tweets)"
            + (" [CONTAMINATED]" if "contaminated" in reads else ""))
        return {"reads": reads, "writes": writes, "delays": delays, "p99_ms": _pct(delays, 99)}

    # --- Live timelines ---------------------------------------------------------------------------------

    def measure_stream(self) -> None:
        """Live timelines: connections held by the stream process (half SSE, half WebSocket), their memory,
        post to event for an author's connected followers at rising connection counts, and the 100:1 mix with
        the connections open beside the same mix with none."""
        target, followers_wanted = self.stream_size
        with self.phase("stream", f"live timelines: {target:,} connections (half SSE, half WebSocket), "
                                  f"post to event for {followers_wanted:,} connected followers, the mix beside them"):
            from bench import streams

            author, all_followers, followers, connected = self._stream_audience(target, followers_wanted)
            tokens = {u: self.token(u) for u in connected}
            say(f"  author {author} (the data set's fan-out probe of {all_followers:,} followers): {len(followers):,} "
                f"of them among the {len(connected):,} connected users")
            result: dict = {"port": self.stream_port, "author": author, "followers": len(followers),
                            "author_followers": all_followers,
                            "connections_wanted": len(connected), "open_rate": self.p["stream_open_rate"],
                            "posts_per_level": self.p["stream_posts"], "post_interval_s": self.p["stream_interval"],
                            "kinds": {k: sum(1 for i in range(len(connected)) if streams.kind_of(i) == k)
                                      for k in streams.KINDS}, "levels": []}
            self.results["stream"] = result
            pool = streams.Pool(HOST, self.stream_port, tokens.__getitem__, say)
            try:
                self._stream_measure(pool, result, author, followers, connected, tokens)
            finally:
                pool.stop()

    def _stream_measure(self, pool, result: dict, author: int, followers: list[int], connected: list[int],
                        tokens: dict[int, str]) -> None:
        import psutil
        import requests

        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {tokens.get(author) or self.token(author)}"
        generator = psutil.Process()
        memory_before = self._stream_memory()
        generator_before = generator.memory_info().rss
        result["memory_before"] = memory_before
        say(f"  stream process(es) before: RSS {memory_before['rss'] / 1e6:.1f} MB, "
            f"PSS {memory_before['pss'] / 1e6:.1f} MB")
        mix_closed, _, _ = self._mix("mix, no streams open")
        result["mix_closed"] = mix_closed
        follower_indexes = list(range(len(followers)))  # the followers are the first connections
        levels = sorted({max(1, round(share * len(connected))) for share in STREAM_LEVELS})
        cpu_before = pool.cpu_seconds()
        for level in levels:
            opened = pool.open_up_to(connected[:level], rate=self.p["stream_open_rate"])
            say(f"  {pool.open_count():,} connections open ({opened.opened:,} opened in {opened.seconds:.0f} s, "
                f"{opened.failed} failed{': ' + str(opened.errors) if opened.errors else ''})")
            time.sleep(1)  # the last graphs read, the opening's garbage collected
            memory = self._stream_memory()
            row: dict = {"connections": pool.open_count(), "opened": opened.opened, "failed": opened.failed,
                         "open_errors": opened.errors, "open_seconds": round(opened.seconds, 1),
                         "followers_connected": sum(1 for i in follower_indexes if i < level)}
            row |= self._stream_per_connection(memory_before, memory, row["connections"])
            row |= self._stream_latency(pool, session, f"stream events at {level:,} connections",
                                        follower_indexes, self.p["stream_posts"])
            result["levels"].append(row)
            self._say_stream(row)
        result["memory_after"] = self._stream_memory()
        result["generator"] = {"rss_before": generator_before, "rss_after": generator.memory_info().rss,
                               "clients_cpu_s": round(pool.cpu_seconds() - cpu_before, 2)}
        # The measurement: the 100:1 mix with every connection open, the author posting meanwhile.
        stop = threading.Event()
        under_mix: dict = {}
        poster = threading.Thread(target=lambda: under_mix.update(self._stream_latency(
            pool, session, "stream events during the mix", follower_indexes, None, stop=stop, quiet=False,
            interval=self.p["stream_mix_interval"])),
            daemon=True)
        poster.start()
        try:
            mix_open, _, _ = self._mix(f"mix, {pool.open_count():,} streams open")
        finally:
            stop.set()
            poster.join(timeout=120)
        result["mix_open"] = mix_open
        result["under_mix"] = under_mix | {"connections": pool.open_count()}
        self._say_stream(result["under_mix"], "during the mix")
        result["closed_during_phase"] = pool.closed_reasons()
        say(f"  mix reads p99 {_f(mix_closed['reads']['p99'])} ms with no streams, {_f(mix_open['reads']['p99'])} ms "
            f"with {pool.open_count():,} open; posts p99 {_f(mix_closed['writes']['p99'])} ms vs "
            f"{_f(mix_open['writes']['p99'])} ms")

    def _say_stream(self, row: dict, when: str = "") -> None:
        say(f"  {row['connections']:,} connections{' ' + when if when else ''}: post to event p50 "
            f"{_f(row.get('p50'))} ms, p99 {_f(row.get('p99'))} ms, max {_f(row.get('max'))} ms over "
            f"{row.get('pairs', 0):,} (tweet, follower) pairs; {row.get('missing', 0)} missing, "
            f"{row.get('duplicates', 0)} duplicates; a tweet's first event after {_f(row.get('first_ms_median'))} ms, "
            f"its last {_f(row.get('spread_ms_median'))} ms later (medians)"
            + (f"; the clients' loop late by p99 {_f(row['generator_lag']['p99_ms'])} ms, max "
               f"{_f(row['generator_lag']['max_ms'])} ms" if row.get("generator_lag") else "")
            + "".join(f"; {kind} p50 {_f(k.get('p50'))} p99 {_f(k.get('p99'))} ms"
                      for kind, k in (row.get("by_kind") or {}).items())
            + (f"; {row['pss_per_connection_kb']:.1f} KB PSS ({row['rss_per_connection_kb']:.1f} KB RSS) a "
               "connection" if row.get("pss_per_connection_kb") is not None else ""))

    def _stream_audience(self, connections: int, followers: int) -> tuple[int, int, list[int], list[int]]:
        """(the author, their followers in all, those of them to connect, the users to connect: those followers
        first, then others).

        The author is the seeded fan-out probe (``seed_bench``: exact follower counts, tweets pushed) with the
        most followers up to ``followers``: 5,000 in the full profile, 1,000 in the quick one (4,999 for 5,000:
        its threshold's largest pushed probe). Its follows are the data set's own, so nothing is changed to
        measure and nothing is left to undo."""
        from social.models import Follow, User

        pushed = {int(count): user for count, user in self.manifest["probes"].items()
                  if int(count) < self.p["threshold"]}
        fitting = [count for count in pushed if count <= followers] or [min(pushed)]
        author = pushed[max(fitting)]
        all_followers = sorted(Follow.objects.accepted().filter(followee_id=author)
                               .values_list("follower_id", flat=True))
        everyone = list(User.objects.filter(is_active=True).order_by("id").values_list("id", flat=True))
        if connections > len(everyone):
            say(f"  the data set has {len(everyone):,} users: {len(everyone):,} connections, not {connections:,}")
            connections = len(everyone)
        rng = random.Random(17)
        chosen = rng.sample(all_followers, min(len(all_followers), followers, connections))
        if len(chosen) < followers:
            say(f"  {len(chosen):,} connected followers, not {followers:,} (the largest pushed probe author's)")
        taken = set(chosen)
        rest = [u for u in everyone if u not in taken]
        rng.shuffle(rest)
        return author, len(all_followers), chosen, chosen + rest[: connections - len(chosen)]

    def _stream_memory(self) -> dict:
        """RSS, PSS and USS of the stream process (and its workers, with STREAM_CONCURRENCY > 1): each, and in all."""
        import psutil

        root = psutil.Process(self.procs["stream"].pid)
        rows = []
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                info = proc.memory_full_info()
                rows.append({"pid": proc.pid, "rss": info.rss, "pss": info.pss, "uss": info.uss})
        return {"processes": rows, **{k: sum(r[k] for r in rows) for k in ("rss", "pss", "uss")}}

    @staticmethod
    def _stream_per_connection(before: dict, after: dict, connections: int) -> dict:
        """The stream processes' growth since ``before``, per open connection, in KB (1,000 bytes)."""
        out: dict = {f"{k}_mb": round(after[k] / 1e6, 1) for k in ("rss", "pss", "uss")}
        for k in ("rss", "pss", "uss"):
            out[f"{k}_per_connection_kb"] = round((after[k] - before[k]) / connections / 1000, 2) \
                if connections else None
        out["processes"] = [{"pid": a["pid"], **{f"{k}_mb": round(a[k] / 1e6, 1) for k in ("rss", "pss", "uss")}}
                            for a in after["processes"]]
        return out

    def _stream_latency(self, pool, session, label: str, follower_indexes: list[int], posts: int | None, *,
                        stop: threading.Event | None = None, quiet: bool = True,
                        interval: float | None = None) -> dict:
        """The author posts ``posts`` times (or until ``stop``), ``stream_interval`` apart; each post's event is
        matched at every follower connection open when it was sent. Latency: arrival minus the POST's sending
        (cross-checked against the tweet id's Snowflake time)."""
        import requests

        from bench import streams
        from tweets import snowflake

        if quiet:
            self.quiet(label)
        before = self.machine.snapshot()
        pool.lag()  # from now on
        interval = interval or self.p["stream_interval"]
        sent: dict[int, tuple[float, list[int]]] = {}
        minted_ms: dict[int, float] = {}  # tweet id -> its Snowflake time minus the send's wall time
        errors: dict[str, int] = {}
        clock_offset = time.time() - time.perf_counter()
        k = 0
        started = time.perf_counter()
        while (posts is None and not (stop and stop.is_set())) or (posts is not None and k < posts):
            due = started + k * interval
            time.sleep(max(0.0, due - time.perf_counter()))
            listening = [i for i in follower_indexes if i in pool.connections and pool.connections[i].closed is None]
            at = time.perf_counter()
            try:
                r = session.post(f"http://{HOST}:{self.port}/v1/tweets", json={"content": f"stream probe {k}"},
                                 timeout=30)
            except requests.RequestException as error:
                errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
                k += 1
                continue
            k += 1
            if r.status_code != 201:
                errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1
                continue
            tweet_id = int(r.json()["tweet_id"])
            sent[tweet_id] = (at, listening)
            minted_ms[tweet_id] = snowflake.timestamp_ms_of(tweet_id) - 1000 * (at + clock_offset)
        expected = sum(len(v[1]) for v in sent.values())
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and pool.received(set(sent), follower_indexes) < expected:
            time.sleep(0.1)
        time.sleep(0.3)  # a duplicate would come right after
        arrivals = pool.arrivals()
        delivery = streams.match(sent, arrivals)
        use = machine.usage(before, self.machine.snapshot())
        out = delivery.summary() | {"posts": len(sent), "post_errors": errors, "interval_s": interval,
                                    "events_per_s": round(expected / len(sent) / interval) if sent else 0,
                                    "minted_after_send_ms": _spread_ms(list(minted_ms.values()))}
        # The same latencies counted from each tweet's Snowflake time instead of the send.
        from_id = sorted(lat - minted_ms[t] for t, lats in delivery.by_tweet.items() for lat in lats)
        out["from_id_time"] = {f"p{p}": round(streams.percentile(from_id, p), 2) for p in (50, 99)} if from_id else {}
        out["by_kind"] = {kind: {k: v for k, v in streams.match(
            {t: (at, [i for i in listening if streams.kind_of(i) == kind]) for t, (at, listening) in sent.items()},
            arrivals).summary().items() if k in ("pairs", "missing", "duplicates", "p50", "p99", "max",
                                                 "first_ms_median", "spread_ms_median")}
            for kind in streams.KINDS}
        out["cpu_s"] = {g: round(v, 3) for g, v in use.by_group.items()}
        out["generator_lag"] = pool.lag()
        noisy = machine.contamination(use)
        if noisy:
            out["contaminated"] = noisy
            self.results["contamination"].append({"run": label, "when": "during",
                                                  "other_cores": round(use.cores("other"), 3),
                                                  "steal_s": round(use.steal, 3), "processes": noisy})
        self.latencies[f"post to stream event ({label})"] = delivery.latencies_ms
        return out


    def measure_memory(self) -> None:
        with self.phase("memory", "Redis memory: per cached entry, per active user, by key family"):
            from bench import store_probes
            from core import redis as core_redis

            active = self.manifest["active"]
            sample = random.Random(7).sample(active, min(2000, len(active)))
            usage = store_probes.memory_usage(user_ids=sample).values()
            pairs = [(u.timeline_bytes, u.timeline_entries) for u in usage if u.timeline_bytes and u.timeline_entries]
            total_bytes, total_entries = sum(s for s, _ in pairs), sum(n for _, n in pairs)
            per_user_keys = sum(u.graph_bytes + u.generation_bytes for u in usage)
            used_memory = core_redis.used_memory()
            families = memory.by_family(host=HOST, port=self.redis_port, active_users=len(active))
            self.results["memory"] = {
                "timelines_sampled": len(pairs),
                "bytes_per_entry": round(total_bytes / total_entries, 2),
                "mean_entries": round(total_entries / len(pairs), 1),
                "bytes_per_active_user": round((total_bytes + per_user_keys) / len(pairs), 1),
                "used_memory_bytes": used_memory,
                "used_memory_per_active_user": round(used_memory / len(active), 1),
                "families": families,
            }
            m = self.results["memory"]
            say(f"  {m['bytes_per_entry']} bytes per entry ({m['mean_entries']} entries a timeline), "
                f"{m['used_memory_per_active_user']:,} bytes of all Redis memory per active user")
            for f in families["families"]:
                say(f"  {f['family']:<12} {f['keys']:>9,} keys  ~{f['bytes']:>12,} B  "
                    f"{f['bytes_per_active_user']:>8,} B per active user")

    MASTODON_HOME = "/api/v1/timelines/home?limit=20"

    def oauth_tokens(self, user_ids: list[int]) -> dict[int, str]:
        """An OAuth access token of each user, as a Mastodon app holds after signing in (made here, in the
        database: signing 200 users in through the password grant would hash 200 passwords and meet the
        login rate limit)."""
        from datetime import timedelta

        from django.utils import timezone
        from oauth2_provider.models import get_access_token_model, get_application_model

        application, _ = get_application_model().objects.get_or_create(
            name="bench", defaults={"client_type": "confidential", "authorization_grant_type": "password",
                                    "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"})
        expires = timezone.now() + timedelta(days=1)
        tokens = {u: secrets.token_urlsafe(32) for u in user_ids}
        model = get_access_token_model()
        for user_id, raw in tokens.items():
            model.objects.create(user_id=user_id, application=application, token=raw, expires=expires,
                                 scope="read write follow")
        return tokens

    def measure_mastodon(self) -> None:
        """The same readers through Mastodon's home timeline (an OAuth token looked up, Status entities built)
        beside ``/v1``'s: p50 at one connection, interleaved; then the server CPU a page costs each, by process
        group, both at one open-loop rate; and the size of a page."""
        with self.phase("mastodon", "Mastodon's /api/v1/timelines/home beside /v1/timeline/home, same readers"):
            active = self.manifest["active"]
            readers = random.Random(11).sample(active, min(200, len(active)))
            tokens = self.oauth_tokens(readers)
            masto_headers = [{"Authorization": f"Bearer {tokens[u]}"} for u in readers]
            makes = {"v1": self.readers(readers, self.TIMELINE),
                     "mastodon": lambda: Request("GET", self.MASTODON_HOME, random.choice(masto_headers))}
            best = {}
            for name, make in makes.items():
                self.closed(make, 8, seconds=2)  # warm the token cache, the timelines and the connections
                best[name] = self.closed(make, 8).summary()["rps"]
            paired = self.interleaved({f"{name} c=1, paired": lambda m=make: self.closed(m, 1)
                                       for name, make in makes.items()}, at_least=DECIDING_REPETITIONS,
                                      ratio=Ratio("mastodon c=1, paired", "v1 c=1, paired", "p50", 1.3))
            rate = round(min(best.values()) / 2)
            by_group: dict[str, list[dict]] = {name: [] for name in makes}
            for k in range(self.p["repetitions"]):
                for name, make in makes.items():
                    by_group[name].append(self.measured(f"{name} open {rate}/s {k + 1}",
                                                        lambda m=make: self.open(m, rate))["cpu_ms_per_request"])
            cpu = {name: {g: round(statistics.median(r[g] for r in runs), 4) for g in runs[0]}
                   for name, runs in by_group.items()}
            sizes = {}
            for name, path, token in (("v1", self.TIMELINE, self.token(readers[0])),
                                      ("mastodon", self.MASTODON_HOME, tokens[readers[0]])):
                answer = requests.get(f"http://{HOST}:{self.port}{path}", timeout=10,
                                      headers={"Authorization": f"Bearer {token}"})
                answer.raise_for_status()
                sizes[name] = len(answer.content)
            v1, masto = paired["v1 c=1, paired"], paired["mastodon c=1, paired"]
            self.results["mastodon"] = {
                "readers": len(readers), "p50_ratio": round(masto["p50"] / v1["p50"], 3),
                "paired": {"v1": v1, "mastodon": masto}, "max_rps_c8": best, "open_rate": rate,
                "cpu_ms_per_request": cpu, "page_bytes": sizes}
            say(f"  p50 at one connection: Mastodon {_f(masto['p50'], 2)} ms, /v1 {_f(v1['p50'], 2)} ms "
                f"({masto['p50'] / v1['p50']:.2f}x); server CPU a page at {rate}/s: Mastodon "
                f"{_f(cpu['mastodon']['server'], 2)} ms (web {_f(cpu['mastodon']['web'], 2)}), /v1 "
                f"{_f(cpu['v1']['server'], 2)} ms (web {_f(cpu['v1']['web'], 2)}); a page is {sizes['mastodon']:,} "
                f"bytes against {sizes['v1']:,}")

    def measure_stack_memory(self) -> None:
        """RSS, PSS and USS of the stack's processes by group, the web server back to its defaults: what the
        stack holds after the benchmark (PSS shares each page among the processes that map it)."""
        memory_now = machine.memory_by_group(self.machine.snapshot())
        self.results["stack_memory"] = memory_now
        self.results["stack_rss_mib"] = round(sum(memory_now[g]["rss_mib"] for g in ("web", "worker", "beat")), 1)
        for group, m in memory_now.items():
            say(f"  {group:<8} {m['processes']} processes: RSS {m['rss_mib']:.0f} MiB, PSS {m['pss_mib']:.0f} MiB, "
                f"USS {m['uss_mib']:.0f} MiB")

    def measure_webservers(self) -> None:
        """gunicorn sync, gunicorn gthread and granian, on the no-op and the timeline, in this run."""
        with self.phase("webservers", "web servers side by side: gunicorn sync, gunicorn gthread, granian"):
            rows = []
            concurrency = self.p["web_concurrency"]
            active = self.manifest["active"]
            try:
                for label, extra in WEB_SERVERS.items():
                    say(f"  starting the web server as {label}")
                    try:
                        command = self.restart_web(extra, label)
                    except SystemExit as exc:
                        say(f"  {label} did not start: {exc}")
                        rows.append({"server": label, "error": str(exc)})
                        continue
                    row = {"server": label, "command": command}
                    for name, path in (("ping", "/v1/bench/ping"), ("timeline", self.TIMELINE)):
                        make = self.readers(active, path)
                        self.closed(make, concurrency, seconds=1)
                        row[f"{name}_c1"] = self.repeat(f"{label} {name} c=1", lambda: self.closed(make, 1))  # noqa: B023
                        row[f"{name}_max"] = self.repeat(f"{label} {name} c={concurrency}",
                                                         lambda: self.closed(make, concurrency))  # noqa: B023
                    rows.append(row)
            finally:
                self.results["webservers"] = rows
                self.restart_web({}, "default")

    def profile(self) -> None:
        """py-spy on the web workers under POST load: where a post's time goes."""
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(spy).exists():
            say("no py-spy: no post profile")
            return
        with self.phase("profile", "profile of POST /v1/tweets on the web workers (py-spy)"):
            from social.models import User

            authors = list(User.objects.filter(followers_count__lt=self.p["threshold"] // 10,
                                               followers_count__gte=20).values_list("id", flat=True)[:2000])
            make_post = self._poster(authors)
            out = self.out / "profile-post.txt"
            seconds = max(4, 2 * self.p["seconds"])
            proc = subprocess.Popen([spy, "record", "--pid", str(self.procs["web"].pid), "--subprocesses",
                                     "--format", "raw", "--output", str(out), "--duration", str(seconds),
                                     "--rate", "200", "--nonblocking"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(1)
            self.closed(make_post, 8, seconds=seconds)
            _, err = proc.communicate(timeout=120)
            self._drain_fanout()
            if out.exists() and out.stat().st_size:
                self.results["post_profile"] = {"file": out.name, **profiles.post_breakdown(out.read_text())}
                for row in self.results["post_profile"]["groups"]:
                    say(f"  {row['group']:<40} {100 * row['share']:5.1f}%")
            else:
                say(f"  py-spy recorded nothing: {err.decode(errors='replace').strip()[:300]}")

    def _measure_speed(self, when: str) -> None:
        """The machine's speed (``machine.speed``) before and after the phases, on a quiet machine: the report
        shows it, so that runs of different days can be told apart from changes in the code."""
        self.quiet(f"the speed probe ({when})")
        measured = machine.speed()
        self.results["meta"].setdefault("speed", {})[when] = measured
        say(f"machine speed {when}: pure-Python work {measured['python_ms']:.2f} ms, "
            f"a round trip between two processes {measured['round_trip_us']:.1f} us")

    # --- Run -------------------------------------------------------------------------

    PHASES = ("reads", "growth", "posts", "fanout", "cluster", "mix", "mastodon", "stream", "memory", "webservers",
              "profile")

    def run(self, phases: tuple[str, ...] = PHASES) -> None:
        started = time.monotonic()
        try:
            self.start()
            self.results["meta"]["setup_seconds"] = round(time.monotonic() - started, 1)
            self._measure_speed("before")
            for i, phase in enumerate(phases, 1):
                say(f"phase {i}/{len(phases)}")
                getattr(self, phase if phase == "profile" else f"measure_{phase}")()
            self.measure_stack_memory()
            self._measure_speed("after")
        finally:
            self.results["meta"]["seconds"] = round(time.monotonic() - started, 1)
            self.results["meta"]["measuring_seconds"] = round(
                self.results["meta"]["seconds"] - self.results["meta"].get("setup_seconds", 0), 1)
            self.results["quiet_wait_left_s"] = round(self.quiet_left, 1)
            self.cleanup.close()
        from bench.report import write_report  # matplotlib: only once there is something to plot

        write_report(self.results, self.latencies, self.out)
        if self.results["contamination"]:
            say(f"CONTAMINATED: {len(self.results['contamination'])} run(s) measured on a busy machine "
                "(see the top of the report)")
        say(f"done in {self.results['meta']['seconds']:.0f} s: {self.out / 'report.md'}")


def commandstats(client) -> dict[str, tuple[int, int]]:
    """A server's ``INFO commandstats``: each command's calls and microseconds so far."""
    return {name.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"]))
            for name, v in client.info("commandstats").items()}


def commandstats_delta(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> dict[str, dict]:
    """Each command called between two ``INFO commandstats``: its calls and microseconds in between."""
    delta = {}
    for name, (calls, usec) in after.items():
        calls0, usec0 = before.get(name, (0, 0))
        if calls > calls0:
            delta[name] = {"calls": calls - calls0, "usec": usec - usec0}
    return delta


def _scripts(delta: dict[str, dict]) -> dict:
    """The script calls (EVAL, EVALSHA, FCALL and their read-only forms) of a commandstats delta, summed,
    beside every command's."""
    scripts = [v for name, v in delta.items() if name.startswith(("eval", "fcall"))]
    return {"calls": sum(v["calls"] for v in scripts), "usec": sum(v["usec"] for v in scripts), "commands": delta}


# A ratio whose repetitions straddle its goal is measured up to this many times (interleaved with its baseline).
DECIDING_REPETITIONS = 5


@dataclass(frozen=True)
class Ratio:
    """``numerator``'s ``key`` over ``denominator``'s, each repetition's own, against ``goal``."""

    numerator: str
    denominator: str
    key: str
    goal: float

    def undecided(self, done: dict[str, list[dict]]) -> bool:
        """Whether the repetitions so far put the ratio on both sides of the goal."""
        ratios = [a[self.key] / b[self.key] for a, b in zip(done[self.numerator], done[self.denominator],
                                                            strict=True) if b[self.key]]
        return bool(ratios) and min(ratios) < self.goal <= max(ratios)


def _f(value, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _timings_line(t: dict) -> str:
    return ", ".join(f"{k} {v:.0f}" if isinstance(v, float) else f"{k} {v}" for k, v in t.items())


def _median_timings(runs: list[dict | None]) -> dict | None:
    """Each key of the app's fan-out timings, the median over the repetitions that recorded it."""
    runs = [r for r in runs if isinstance(r, dict)]
    if not runs:
        return None
    keys = [k for k in runs[0] if all(isinstance(r.get(k), int | float) for r in runs)]
    return {k: machine.spread(r[k] for r in runs)["median"] for k in keys}


def _spread_ms(values: list[float]) -> dict | None:
    """Median, min and max of some milliseconds, rounded; None if there are none."""
    if not values:
        return None
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2), "max": round(max(values), 2)}


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=1000, method="inclusive")[int(p * 10) - 1] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small data set and short runs (under 5 minutes)")
    parser.add_argument("--out", type=Path, help="result directory (default bench/results/<date>[-quick])")
    parser.add_argument("--phases", default=",".join(Bench.PHASES),
                        help=f"comma-separated subset of {','.join(Bench.PHASES)}")
    parser.add_argument("--fresh-data", action="store_true",
                        help="seed afresh even if the database holds this profile's data set")
    parser.add_argument("--reuse-data", action="store_true", help="(the default) reuse this profile's data set")
    parser.add_argument("--database", default=DATABASE,
                        help=f"the database to seed and measure (default {DATABASE}); it is emptied if it holds "
                             "anything but this profile's data set")
    parser.add_argument("--stream-connections", type=int,
                        help="connections the stream phase holds (default: the profile's, 10,000 full, 2,000 quick)")
    parser.add_argument("--stream-followers", type=int,
                        help="of them, the posting author's followers (default: 5,000 full, 1,000 quick)")
    args = parser.parse_args()
    profile = "quick" if args.quick else "full"
    name = datetime.now().strftime("%Y-%m-%d") + ("-quick" if args.quick else "")
    out = args.out or REPO / "bench" / "results" / name
    out.mkdir(parents=True, exist_ok=True)
    common.on_signals(common.raise_interrupted)
    try:
        Bench(profile, out, reuse=not args.fresh_data, database=args.database,
              stream_connections=args.stream_connections, stream_followers=args.stream_followers,
              ).run(tuple(args.phases.split(",")))
    except common.Interrupted as exc:
        say(f"{exc} received: stopped")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
