"""`make bench`: seed a data set, start the production stack, measure it beside its baselines, write a report.

    .venv/bin/python -m bench.run [--quick] [--out bench/results/<date>]

Everything runs on this machine: a fresh PostgreSQL database (``timeline_bench``
on the configured server, or an embedded one), a Valkey server of the bench's
own (so it can be flushed and measured), the Procfile's web, worker and beat
started as ``make run`` starts them (under ``bench.settings``: production's,
plus the baseline endpoints and ``seed_bench``), and the load generator
(``bench/loadgen.py``) in this process, whose CPU use is reported beside each
figure. The report (``report.md``, ``report.json`` and PNG plots) goes to
``bench/results/<date>/``.
"""
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
from datetime import UTC, datetime
from pathlib import Path

from bench import backing, loadgen
from bench.loadgen import Request
from stack import common, procfile, services

REPO = Path(__file__).resolve().parent.parent

PROFILES = {
    # users, tweets, celebrity threshold, active share, seconds per measured run, closed-loop concurrencies
    "full": {"users": 100_000, "tweets": 1_000_000, "threshold": 50_000, "active": 0.2, "seconds": 12,
             "concurrency": [1, 4, 16, 64], "fanout_repeats": 3, "mix_seconds": 30},
    "quick": {"users": 10_000, "tweets": 100_000, "threshold": 5_000, "active": 0.2, "seconds": 4,
              "concurrency": [1, 8, 32], "fanout_repeats": 2, "mix_seconds": 8},
}
HOST = "127.0.0.1"


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Bench:
    def __init__(self, profile: str, out: Path):
        self.name, self.p, self.out = profile, PROFILES[profile], out
        self.cleanup = contextlib.ExitStack()
        self.results: dict = {"meta": {"profile": profile, "started": datetime.now(UTC).isoformat(timespec="seconds"),
                                       "cpus": common.cpu_count(), "python": platform.python_version(),
                                       "machine": platform.machine()}}
        self.data_dir = REPO / ".data" / "bench"

    # --- Setting up ------------------------------------------------------------------

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        started = backing.start(database="timeline_bench", data_dir=self.data_dir, cleanup=self.cleanup, s3_port=8790)
        self.db_url, self.redis_port = started.database_url, started.redis_port
        self.port = common.pick_port(8700)
        self.env = os.environ | started.env() | {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "SECRET_KEY": secrets.token_urlsafe(40),
            "PORT": str(self.port),
            "TIMELINE_CELEBRITY_THRESHOLD": str(self.p["threshold"]),
            "JWT_ACCESS_MINUTES": "600",
        }
        say(f"database timeline_bench on {services.redact(self.db_url)}; Valkey on port {self.redis_port}")
        backing.prepare(self.env)
        manifest = self.out / "manifest.json"
        say(f"seeding ({self.p['users']:,} users, {self.p['tweets']:,} tweets)")
        backing.manage(self.env, "seed_bench", f"--users={self.p['users']}", f"--tweets={self.p['tweets']}",
                       f"--threshold={self.p['threshold']}", f"--active={self.p['active']}", f"--manifest={manifest}")
        self.manifest = json.loads(manifest.read_text())
        self.results["meta"]["dataset"] = {k: v for k, v in self.manifest.items() if k not in ("active", "password")}
        self.results["meta"]["dataset"]["active_users"] = len(self.manifest["active"])
        os.environ.update(self.env)
        import django

        django.setup()
        self.logs = self.out / "logs"
        self.logs.mkdir(exist_ok=True)
        commands = procfile.load()
        child_env = procfile.process_env(self.env, self.data_dir)
        self.results["meta"]["stack"] = {name: " ".join(procfile.expanded(command, child_env))
                                         for name, command in commands.items()}
        self.procs = {name: procfile.start(command, child_env, stdout=(self.logs / f"{name}.log").open("w"),
                                           stderr=subprocess.STDOUT) for name, command in commands.items()}
        self.cleanup.callback(common.stop_processes, self.procs)
        self._wait_ready()

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
                                   duration=seconds or self.p["seconds"], warmup=1.0)

    def open(self, make, rate: float, seconds: float | None = None) -> loadgen.Result:
        return loadgen.open_loop(HOST, self.port, make, rate=rate, duration=seconds or self.p["seconds"], warmup=1.0)

    @staticmethod
    def show(label: str, result: loadgen.Result) -> dict:
        s = result.summary()
        say(f"  {label}: {s['rps']:.0f} req/s, p50 {s['p50']:.1f} ms, p99 {s['p99']:.1f} ms, "
            f"errors {s['errors']}, generator CPU {100 * s['cpu_share']:.0f}% of a core")
        return s

    # --- Measurements ----------------------------------------------------------------

    def measure_reads(self) -> None:
        say("timeline reads (closed loop) beside the trivial endpoint and the naive SQL timeline")
        active = self.manifest["active"]
        endpoints = {"timeline": "/v1/timeline/home?limit=20", "ping": "/v1/bench/ping",
                     "naive": "/v1/bench/naive-timeline?limit=20"}
        reads: dict[str, list] = {name: [] for name in endpoints}
        self.latencies = {}
        for name, path in endpoints.items():
            make = self.readers(active, path)
            self.closed(make, 8, seconds=2)  # warm the caches and connections
            for concurrency in self.p["concurrency"]:
                result = self.closed(make, concurrency)
                reads[name].append(self.show(f"{name} c={concurrency}", result))
                self.latencies[f"{name} (closed, c={concurrency})"] = result.latencies_ms
        self.results["reads_closed"] = reads
        best = max(r["rps"] for r in reads["timeline"])
        rate = best / 2
        say(f"timeline reads, open loop at half the maximum ({rate:.0f}/s)")
        result = self.open(self.readers(active, endpoints["timeline"]), rate)
        self.results["reads_open"] = self.show("timeline open loop", result)
        self.latencies[f"timeline (open, {rate:.0f}/s)"] = result.latencies_ms

    def measure_special_reads(self) -> None:
        from django.db.models import Count

        from social.models import Follow
        from timelines import store

        say("deep pages (past the cached entries) and readers of celebrities")
        floors = store.cached_floors(user_ids=self.manifest["active"][:2000])
        deep = list(floors.items())
        headers = {u: {"Authorization": f"Bearer {self.token(u)}"} for u, _ in deep}

        def make_deep() -> Request:
            user_id, floor = random.choice(deep)
            return Request("GET", f"/v1/timeline/home?limit=20&cursor={floor}", headers[user_id])

        concurrency = max(self.p["concurrency"][1:2] or [4])
        self.results["deep_pages"] = self.show(f"deep pages c={concurrency}", self.closed(make_deep, concurrency))
        self.results["deep_pages"]["users"] = len(deep)
        celebs = self.manifest["celebrities"]
        fans = list(Follow.objects.filter(followee_id__in=celebs).values("follower_id")
                    .annotate(celebrities=Count("followee_id")).filter(celebrities__gte=min(2, len(celebs)))
                    .values_list("follower_id", flat=True)[:2000])
        if fans:
            result = self.closed(self.readers(fans, "/v1/timeline/home?limit=20"), concurrency)
            self.results["celebrity_readers"] = self.show(f"readers of >=2 celebrities c={concurrency}", result)
            self.results["celebrity_readers"]["users"] = len(fans)

    def measure_posts(self) -> None:
        say("POST /v1/tweets: closed loop, then open loop at half its maximum")
        from social.models import User

        threshold = self.p["threshold"]
        authors = list(User.objects.filter(followers_count__lt=threshold // 10, followers_count__gte=20)
                       .values_list("id", flat=True)[:2000])
        headers = [{"Authorization": f"Bearer {self.token(u)}"} for u in authors]
        counter = iter(range(10**9))

        def make_post() -> Request:
            return Request("POST", "/v1/tweets", random.choice(headers),
                           json.dumps({"content": f"bench post {next(counter)}"}).encode())

        closed = self.closed(make_post, 8)
        self.results["posts_closed"] = self.show("posts c=8", closed)
        self._drain_fanout()
        result = self.open(make_post, closed.rps / 2)
        self.results["posts_open"] = self.show(f"posts open loop {closed.rps / 2:.0f}/s", result)
        self.latencies["POST /v1/tweets (open)"] = result.latencies_ms
        self._drain_fanout()

    def _drain_fanout(self, timeout: float = 120) -> None:
        from timelines.models import PendingFanout

        deadline = time.monotonic() + timeout
        while PendingFanout.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.2)

    def measure_fanout(self) -> None:
        say("fan-out: completion time and deliveries/s by follower count, beside pipelined LPUSH")
        import requests

        from social.models import Follow
        from timelines import store
        from timelines.models import PendingFanout

        rows = []
        probes = sorted(self.manifest["probes"].items(), key=lambda kv: int(kv[0]))
        for _label, author in probes:
            followers = list(Follow.objects.filter(followee_id=author).values_list("follower_id", flat=True))
            live = len(store.existing(user_ids=followers)) + 1
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {self.token(author)}"
            for n in range(self.p["fanout_repeats"]):
                started = time.perf_counter()
                r = session.post(f"http://{HOST}:{self.port}/v1/tweets", json={"content": f"fan-out probe {n}"})
                tweet_id = int(r.json()["tweet_id"])
                while PendingFanout.objects.filter(tweet_id=tweet_id).exists():
                    time.sleep(0.002)
                seconds = time.perf_counter() - started
                rows.append({"followers": len(followers), "cached_timelines": live, "seconds": round(seconds, 4),
                             "deliveries_per_s": round(live / seconds)})
                say(f"  {len(followers):,} followers ({live:,} cached): {1000 * seconds:.0f} ms, "
                    f"{live / seconds:,.0f} deliveries/s")
        self.results["fanout"] = rows
        self.results["lpush_ceiling"] = self._lpush_ceiling()
        say(f"  raw pipelined LPUSH on the same server: {self.results['lpush_ceiling']['ops_per_s']:,.0f}/s "
            f"({self.results['lpush_ceiling']['tool']})")

    def _lpush_ceiling(self) -> dict:
        tool = shutil.which("redis-benchmark") or shutil.which("valkey-benchmark")
        if tool:
            out = subprocess.run([tool, "-h", HOST, "-p", str(self.redis_port), "-t", "lpush", "-P", "64", "-n",
                                  "2000000", "-r", "100000", "-q", "--csv"], capture_output=True, text=True).stdout
            match = re.search(r'"LPUSH[^"]*","([\d.]+)"', out)
            if match:
                return {"tool": "redis-benchmark -t lpush -P 64 -n 2000000 -r 100000", "ops_per_s": float(match[1])}
        import redis

        client = redis.Redis(host=HOST, port=self.redis_port, db=2)
        started, count = time.perf_counter(), 0
        while time.perf_counter() - started < 3:
            pipe = client.pipeline(transaction=False)
            for i in range(1000):
                pipe.lpush(f"bench:lpush:{i % 100}", i)
            pipe.execute()
            count += 1000
        client.flushdb()
        return {"tool": "redis-py pipelined LPUSH, 1000 per round trip",
                "ops_per_s": count / (time.perf_counter() - started)}

    def measure_propagation(self) -> None:
        say(f"propagation delay under a 100:1 read/write mix ({self.p['mix_seconds']} s)")
        from django.contrib.postgres.aggregates import ArrayAgg

        from social.models import Follow
        from timelines import store

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
                    if all(tweet_id in ids for ids in store.heads(user_ids=followers, count=21).values()):
                        delays.append(1000 * (time.monotonic() - at))
                    elif time.monotonic() - at < 30:
                        still.append((tweet_id, at, followers))
                pending = still
                time.sleep(0.005)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        read_rate = self.results["reads_open"]["offered_rps"] or 100
        read = self.readers(self.manifest["active"], "/v1/timeline/home?limit=20")
        reads, writes = loadgen.run_concurrently(
            loadgen.open_loop_async(HOST, self.port, read, rate=read_rate, duration=self.p["mix_seconds"]),
            loadgen.open_loop_async(HOST, self.port, make_post, rate=read_rate / 100, duration=self.p["mix_seconds"],
                                    on_response=on_post),
        )
        stop.set()
        watcher.join(timeout=40)
        delays.sort()
        self.results["propagation"] = {
            "reads": self.show(f"mixed reads {read_rate:.0f}/s", reads),
            "writes": self.show(f"mixed posts {read_rate / 100:.1f}/s", writes),
            "samples": len(delays),
            "p50_ms": _pct(delays, 50), "p99_ms": _pct(delays, 99), "max_ms": delays[-1] if delays else None,
        }
        self.latencies["propagation (post to visible)"] = delays
        say(f"  post to visible: p50 {_pct(delays, 50):.0f} ms, p99 {_pct(delays, 99):.0f} ms ({len(delays)} tweets)")

    def measure_memory(self) -> None:
        say("Redis memory per cached timeline entry and per active user")
        from timelines import store

        active = self.manifest["active"]
        sample = random.Random(7).sample(active, min(2000, len(active)))
        usage = store.memory_usage(user_ids=sample).values()
        pairs = [(u.timeline_bytes, u.timeline_entries) for u in usage if u.timeline_bytes and u.timeline_entries]
        total_bytes, total_entries = sum(s for s, _ in pairs), sum(n for _, n in pairs)
        per_user_keys = sum(u.graph_bytes + u.generation_bytes for u in usage)
        used_memory = store.used_memory()
        self.results["memory"] = {
            "timelines_sampled": len(pairs),
            "bytes_per_entry": round(total_bytes / total_entries, 2),
            "mean_entries": round(total_entries / len(pairs), 1),
            "bytes_per_active_user": round((total_bytes + per_user_keys) / len(pairs), 1),
            "used_memory_bytes": used_memory,
            "used_memory_per_active_user": round(used_memory / len(active), 1),
        }
        m = self.results["memory"]
        say(f"  {m['bytes_per_entry']} bytes per entry ({m['mean_entries']} entries a timeline), "
            f"{m['bytes_per_active_user']:,} bytes of timeline keys per active user")

    def profile(self) -> None:
        """A py-spy profile of the web workers under timeline reads."""
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(spy).exists():
            return
        say("profiling the web server under timeline reads (py-spy)")
        out = self.out / "profile-timeline.txt"
        proc = subprocess.Popen([spy, "record", "--pid", str(self.procs["web"].pid), "--subprocesses", "--format",
                                 "raw", "--output", str(out), "--duration", str(self.p["seconds"]), "--nonblocking"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        self.closed(self.readers(self.manifest["active"], "/v1/timeline/home?limit=20"), 16)
        proc.wait(timeout=60)
        if out.exists():
            self.results["profile"] = {"file": out.name, "top": _top_frames(out)}

    # --- Run -------------------------------------------------------------------------

    PHASES = ("reads", "special_reads", "posts", "fanout", "propagation", "memory", "profile")

    def run(self, phases: tuple[str, ...] = PHASES) -> None:
        started = time.monotonic()
        try:
            self.start()
            for phase in phases:
                getattr(self, phase if phase == "profile" else f"measure_{phase}")()
        finally:
            self.results["meta"]["seconds"] = round(time.monotonic() - started, 1)
            self.cleanup.close()
        from bench.report import write_report  # matplotlib: only once there is something to plot

        write_report(self.results, getattr(self, "latencies", {}), self.out)
        say(f"done in {self.results['meta']['seconds']:.0f} s: {self.out / 'report.md'}")


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=1000, method="inclusive")[int(p * 10) - 1] if len(values) > 1 else values[0]


def _top_frames(path: Path, n: int = 20) -> list[dict]:
    """Where the web server spends its time, from a py-spy raw (collapsed) profile: the project's own
    functions and the biggest library leaves, each with its inclusive share of the samples."""
    inclusive: dict[str, int] = {}
    leaves: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack_part, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        total += int(count)
        frames = stack_part.split(";")
        leaves[frames[-1]] = leaves.get(frames[-1], 0) + int(count)
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + int(count)
    own = [(f, c) for f, c in inclusive.items() if re.search(r"\((core|social|tweets|timelines|media)/", f)]
    top = sorted(own, key=lambda kv: -kv[1])[:n] + sorted(leaves.items(), key=lambda kv: -kv[1])[:8]
    return [{"frame": f, "share": round(c / total, 3)} for f, c in top]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small data set and short runs (under 5 minutes)")
    parser.add_argument("--out", type=Path, help="result directory (default bench/results/<date>[-quick])")
    parser.add_argument("--phases", default=",".join(Bench.PHASES),
                        help=f"comma-separated subset of {','.join(Bench.PHASES)} (propagation needs reads)")
    args = parser.parse_args()
    profile = "quick" if args.quick else "full"
    name = datetime.now().strftime("%Y-%m-%d") + ("-quick" if args.quick else "")
    out = args.out or REPO / "bench" / "results" / name
    out.mkdir(parents=True, exist_ok=True)
    common.on_signals(common.raise_interrupted)
    try:
        Bench(profile, out).run(tuple(args.phases.split(",")))
    except common.Interrupted as exc:
        say(f"{exc} received: stopped")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
