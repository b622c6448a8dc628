"""`make soak`: a long mixed workload against the production stack on two "hosts" behind haproxy, then an audit.

    .venv/bin/python -m bench.soak [--minutes 10] [--read-rate 100] [--out bench/results/soak-<date>]

What it starts, all on this machine and all its own (nothing shared is touched): a fresh ``timeline_soak``
database on the configured PostgreSQL (an embedded one on a machine with none), a Valkey server, a local S3
endpoint, and the Procfile's processes under production settings (``config.settings.production``), twice over as
two stateless hosts would run them: hosts ``a`` and ``b`` each run a gunicorn (``web``, its own port), a stream
process (``stream``, its own port) and a Celery worker (``worker``, its own ``-n`` hostname); host ``a`` also runs
beat. haproxy (Debian's package) listens on one port: the streaming paths (Mastodon's ``/api/v1/streaming``, over
HTTP or a WebSocket upgrade, and ``/v1/timeline/home/stream``) go to the stream process with the fewest connections,
everything else round-robin to one of the two web servers; the load generator (``bench/loadgen.py``) and the
stream readers talk only to haproxy.

The workload, for ``--minutes``: open loops of timeline reads (``--read-rate`` a second: first pages, next pages
and pull-to-refresh), posts at a hundredth of that, and follows, unfollows and deletes at half the posts' rate.
Meanwhile ``--stream-readers`` users whose follows do not change hold ``/v1`` streams open (and
``--ws-readers`` of them Mastodon's WebSocket too), as careful clients (``chaos.streams``: on a disconnection
they reconnect, a ``/v1`` one with ``Last-Event-ID``); at ``--stream-kill-at`` of the run stream-a is SIGKILLed,
its readers reconnect through haproxy to stream-b, and it is started again ``--stream-down`` seconds later, as a
process manager would. The resident memory (RSS, from /proc) of each process group is sampled every
``--sample-seconds``.

Then the audit: once every fan-out and follow update has finished, every user's home timeline is scrolled to the
end over HTTP and compared with the truth computed from PostgreSQL (the visible tweets of the user's accepted
followees and the user's own, not deleted, authors active, newest first, each once); and what each stream reader
received is compared with the head of its timeline (the same tweets, none twice, none missing; a WebSocket reader
no tweet twice on one connection). The run fails (exit 1) on any difference, any 5xx or unanswered request, or a
process of the stack that died (stream-a's deliberate kill apart). ``report.json``,
``report.md`` and ``soak.png`` (memory, request rate and p99 over time) go to the output directory.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench import backing, loadgen
from bench.loadgen import Request
from chaos import streams
from stack import common, procfile, services

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
HOSTS = ("a", "b")  # the two simulated hosts, each running a web server, a stream process and a Celery worker
DATABASE = "timeline_soak"
# Rates no client of the soak reaches: the limits are still counted in Redis on every request, as in production.
UNLIMITED = "1000000000/s"
PAGE_SIZE = 4096


def say(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- Memory of process groups, from /proc ------------------------------------------------------------------------


def group_memory(pgids: dict[str, int], proc: Path = Path("/proc")) -> dict[str, dict[str, int]]:
    """For each named process group: its processes, and their summed RSS and PSS in bytes.

    RSS counts a page shared by a forked master and its workers once in each of them; PSS divides it among them,
    so the PSS of a group adds up to what it really holds. Both are read from /proc (``status`` and
    ``smaps_rollup``); a process that exits meanwhile is skipped."""
    wanted = {pgid: name for name, pgid in pgids.items()}
    out = {name: {"processes": 0, "rss": 0, "pss": 0} for name in pgids}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # The command name (field 2) may hold spaces and parentheses: the fields after its last ')' are fixed.
            pgrp = int(stat[stat.rindex(")") + 2:].split()[2])
            if pgrp not in wanted:
                continue
            row = out[wanted[pgrp]]
            rss = _kib_field((entry / "status").read_text(), "VmRSS")
            with contextlib.suppress(OSError):
                row["pss"] += _kib_field((entry / "smaps_rollup").read_text(), "Pss")
        except (OSError, ValueError, IndexError):
            continue
        row["processes"] += 1
        row["rss"] += rss
    return out


def _kib_field(text: str, name: str) -> int:
    match = re.search(rf"^{name}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match[1]) * 1024 if match else 0


class MemorySampler(threading.Thread):
    """Samples ``group_memory`` (and the Redis server's ``used_memory``) every ``every`` seconds until stopped."""

    def __init__(self, pgids: dict[str, int], every: float, redis_client):
        super().__init__(daemon=True)
        self.pgids, self.every, self.redis = pgids, every, redis_client
        self.samples: list[dict] = []
        self.stop = threading.Event()
        self.t0 = time.monotonic()

    def sample(self) -> None:
        row = {"t": round(time.monotonic() - self.t0, 2), "groups": group_memory(self.pgids)}
        with contextlib.suppress(Exception):
            row["redis_used_memory"] = int(self.redis.info("memory")["used_memory"])
        self.samples.append(row)

    def run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.every)


# --- The audit -----------------------------------------------------------------------------------------------------


def compare(seen: list[int], truth: list[int]) -> dict:
    """What a scrolled timeline got wrong against the truth (newest first, each once)."""
    seen_set, truth_set = set(seen), set(truth)
    return {
        "lost": sorted(truth_set - seen_set),
        "extra": sorted(seen_set - truth_set),
        "duplicates": len(seen) - len(seen_set),
        "ordered": all(a > b for a, b in zip(seen, seen[1:], strict=False)),
        "equal": seen == truth,
    }


def truth_timelines(user_ids: list[int]) -> dict[int, list[int]]:
    """Every user's home timeline as PostgreSQL has it: the tweets, not deleted, of active authors the user
    follows (accepted) or is, newest first. Computed here from the tables, not by the product's own query."""
    from django.db import connection

    from social.models import Follow, User
    from tweets.models import Tweet

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT t.author_id, t.id FROM {Tweet._meta.db_table} t "
                       f"JOIN {User._meta.db_table} u ON u.id = t.author_id "
                       "WHERE t.deleted_at IS NULL AND u.is_active")
        by_author: dict[int, list[int]] = defaultdict(list)
        for author, tweet in cursor.fetchall():
            by_author[author].append(tweet)
        cursor.execute(f"SELECT follower_id, followee_id FROM {Follow._meta.db_table} WHERE state = 'accepted'")
        followees: dict[int, set[int]] = defaultdict(set)
        for follower, followee in cursor.fetchall():
            followees[follower].add(followee)
    return {u: sorted((t for a in followees[u] | {u} for t in by_author.get(a, ())), reverse=True)
            for u in user_ids}


# --- The run -------------------------------------------------------------------------------------------------------


@dataclass
class Workload:
    """The clients' side of the soak: users, their tokens, what they follow and posted, and every answer."""

    headers: dict[int, dict[str, str]]
    readers: list[int]
    popularity: list[float]  # weight of each user (index into users) as a followee
    users: list[int]
    steady: set[int] = field(default_factory=set)  # the stream readers: their follows never change
    following: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    posted: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    cursors: dict[int, tuple[str | None, str | None]] = field(default_factory=dict)
    events: list[tuple[float, str, int, float]] = field(default_factory=list)  # (t, kind, status, latency ms)
    lock: threading.Lock = field(default_factory=threading.Lock)
    counter: int = 0

    def pick_followee(self, follower: int) -> int:
        while True:
            other = random.choices(self.users, self.popularity)[0]
            if other != follower:
                return other

    # Requests carry their kind (and what they act on) in headers the server ignores.
    def read(self) -> Request:
        user = random.choice(self.readers)
        next_cursor, prev_cursor = self.cursors.get(user, (None, None))
        roll = random.random()
        if roll < 0.10 and next_cursor:
            path, kind = f"/v1/timeline/home?limit=20&cursor={next_cursor}", "read-next"
        elif roll < 0.15 and prev_cursor:
            path, kind = f"/v1/timeline/home?limit=20&since={prev_cursor}", "read-since"
        else:
            path, kind = "/v1/timeline/home?limit=20", "read"
        return Request("GET", path, self.headers[user] | {"X-Soak": f"{kind} {user}"})

    def post(self) -> Request:
        author = random.choice(self.users)
        self.counter += 1
        body = json.dumps({"content": f"soak tweet {self.counter} #soak"}).encode()
        return Request("POST", "/v1/tweets", self.headers[author] | {"X-Soak": f"post {author}"}, body)

    def graph(self) -> Request:
        """A follow (40%), an unfollow (40%) or a delete of one of the author's tweets (20%)."""
        roll = random.random()
        user = random.choice(self.users)
        while user in self.steady and not (roll < 0.2 and self.posted[user]):
            user = random.choice(self.users)  # a stream reader's follows stay: its timeline grows by new tweets only
        if roll < 0.2 and self.posted[user]:
            victim = self.posted[user].pop(random.randrange(len(self.posted[user])))
            return Request("DELETE", f"/v1/tweets/{victim}", self.headers[user] | {"X-Soak": f"delete {user}"})
        if roll < 0.6 and self.following[user]:
            other = random.choice(sorted(self.following[user]))
            self.following[user].discard(other)
            return Request("DELETE", f"/v1/users/{other}/follow", self.headers[user] | {"X-Soak": f"unfollow {user}"})
        other = self.pick_followee(user)
        self.following[user].add(other)
        return Request("POST", f"/v1/users/{other}/follow", self.headers[user] | {"X-Soak": f"follow {user}"})

    def answered(self, request: Request, status: int, body: bytes, latency_ms: float) -> None:
        kind, _, user = request.headers["X-Soak"].partition(" ")
        self.events.append((time.monotonic(), kind, status, latency_ms))
        if status == 200 and kind.startswith("read"):
            # The next read of this user may go on scrolling (the last page's next_cursor; back to the first page
            # at the end) or refresh (the newest prev_cursor seen).
            data = json.loads(body)
            scroll, refresh = self.cursors.get(int(user), (None, None))
            if kind != "read-since":
                scroll = data["next_cursor"]
            self.cursors[int(user)] = (scroll, data["prev_cursor"] or refresh)
        elif status == 201 and kind == "post":
            self.posted[int(user)].append(int(json.loads(body)["tweet_id"]))


class Soak:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.out: Path = args.out
        self.cleanup = contextlib.ExitStack()
        self.data_dir = REPO / ".data" / "soak"
        self.results: dict = {"meta": {"started": datetime.now(UTC).isoformat(timespec="seconds"),
                                       "cpus": common.cpu_count(), "minutes": args.minutes,
                                       "read_rate": args.read_rate, "users": args.users,
                                       "bucket_seconds": args.bucket_seconds,
                                       "load": os.getloadavg()[0]}}
        self.procs: dict[str, subprocess.Popen] = {}
        self.load_done, self.stack_stopped = threading.Event(), threading.Event()

    # --- Setting up ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        haproxy = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
        if not haproxy:
            raise SystemExit("haproxy is not installed: `make soak` installs Debian's (apt-get install haproxy) as "
                             "root; elsewhere install it by hand")
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True)
        started = backing.start(database=self.args.database, data_dir=self.data_dir, cleanup=self.cleanup, s3_port=8890)
        self.redis_port = started.redis_port
        self.web_ports = {h: common.pick_port(8810 + i) for i, h in enumerate(HOSTS)}
        self.stream_ports = {h: common.pick_port(8820 + i) for i, h in enumerate(HOSTS)}
        self.port = common.pick_port(8800)
        a = self.args
        self.env = os.environ | started.env() | {
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "REDIS_KEY_PREFIX": "soak:",
            # Two hosts together run what one default stack runs on this machine: 2 x cores web workers, and one
            # Celery process a core.
            "WEB_CONCURRENCY": str(a.web_workers),
            "CELERY_CONCURRENCY": str(a.worker_processes),
            "TIMELINE_MAX_ENTRIES": str(a.max_entries),
            "TIMELINE_CELEBRITY_THRESHOLD": str(a.threshold),
            "JWT_ACCESS_MINUTES": str(int(a.minutes) + 120),
            **{f"RATE_LIMIT_{n}": UNLIMITED for n in ("TWEETS", "FOLLOWS", "TIMELINE", "LOGIN", "REGISTER")},
        }
        say(f"database {self.args.database} on {services.redact(started.database_url)}; Valkey on port "
            f"{self.redis_port}; S3 {started.s3_endpoint}")
        backing.prepare(self.env)
        os.environ.update(self.env)
        import django

        django.setup()
        self.logs = self.out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        commands = procfile.load()
        self.commands = commands
        self.host_envs: dict[str, dict[str, str]] = {}
        stack = {}
        for host in HOSTS:
            host_dir = self.data_dir / f"host-{host}"
            host_dir.mkdir()
            host_env = procfile.process_env(self.env | {"PORT": str(self.web_ports[host]),
                                                        "STREAM_PORT": str(self.stream_ports[host]),
                                                        "PROMETHEUS_MULTIPROC_DIR": str(host_dir / "metrics")},
                                            host_dir)
            self.host_envs[host] = host_env
            (host_dir / "metrics").mkdir()
            # Each worker gets a name of its own (-n), as on two machines; the Procfile's command is otherwise kept.
            mine = {"web": commands["web"], "stream": commands["stream"],
                    "worker": f"{commands['worker']} -n worker-{host}@%h"}
            if host == HOSTS[0]:
                mine["beat"] = commands["beat"]  # one beat for the whole deployment
            for name, command in mine.items():
                key = f"{name}-{host}" if name != "beat" else "beat"
                stack[key] = " ".join(procfile.expanded(command, host_env))
                self.procs[key] = procfile.start(command, host_env, stdout=(self.logs / f"{key}.log").open("w"),
                                                 stderr=subprocess.STDOUT)
        self.cleanup.callback(common.stop_processes, self.procs)
        self.results["meta"]["stack"] = stack
        self._start_haproxy(haproxy)
        self._wait_ready()

    def _start_haproxy(self, binary: str) -> None:
        self.haproxy_socket = self.data_dir / "haproxy.sock"
        config = self.data_dir / "haproxy.cfg"
        servers = "\n".join(f"    server web-{h} {HOST}:{p} check inter 2s" for h, p in self.web_ports.items())
        stream_servers = "\n".join(f"    server stream-{h} {HOST}:{p} check inter 1s fall 2 rise 2"
                                   for h, p in self.stream_ports.items())
        config.write_text(HAPROXY_CONFIG.format(socket=self.haproxy_socket, host=HOST, port=self.port,
                                                servers=servers, stream_servers=stream_servers,
                                                served_by=streams.SERVED_BY))
        subprocess.run([binary, "-c", "-q", "-f", str(config)], check=True)
        self.results["meta"]["haproxy"] = {"version": subprocess.run([binary, "-v"], capture_output=True,
                                                                     text=True).stdout.splitlines()[0],
                                           "config": config.read_text()}
        self.procs["haproxy"] = common.spawn([binary, "-db", "-f", str(config)],
                                             stdout=(self.logs / "haproxy.log").open("w"), stderr=subprocess.STDOUT)

    def _wait_ready(self) -> None:
        import requests

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if all(requests.get(f"http://{HOST}:{port}/readyz", timeout=2).status_code == 200
                       for port in [*self.web_ports.values(), self.port]) and self._haproxy_up() \
                        and self._streams_listening(len(HOSTS)):
                    say(f"stack ready: haproxy on {self.port} -> web {sorted(self.web_ports.values())}, "
                        f"streams {sorted(self.stream_ports.values())}")
                    return
            self._check_alive()
            time.sleep(0.5)
        raise SystemExit("the stack did not become ready within 90 s")

    def _check_alive(self) -> list[str]:
        dead = [f"{name} (exit {proc.returncode})" for name, proc in self.procs.items() if proc.poll() is not None]
        if dead and not hasattr(self, "sampler"):
            raise SystemExit(f"{', '.join(dead)} exited: see {self.logs}")
        return dead

    def haproxy_stats(self) -> dict[str, dict[str, str]]:
        """``show stat`` over haproxy's admin socket: the CSV row of each server and the backend, by name."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.haproxy_socket))
            sock.sendall(b"show stat\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
        return {r["svname"]: r for r in rows if r["pxname"] in ("web", "stream")}

    def _haproxy_up(self) -> bool:
        with contextlib.suppress(OSError, IndexError, KeyError):
            stats = self.haproxy_stats()
            return all(stats[f"{kind}-{h}"]["status"] == "UP" for h in HOSTS for kind in ("web", "stream"))
        return False

    def _streams_listening(self, processes: int) -> bool:
        """Whether ``processes`` stream processes listen to every stream channel (before, one refuses streams)."""
        import redis

        from streaming import events

        client = redis.Redis(host=HOST, port=self.redis_port, socket_timeout=2)
        with contextlib.suppress(redis.RedisError):
            return all(count >= processes for _, count in client.pubsub_shardnumsub(*events.channels()))
        return False

    # --- Data ------------------------------------------------------------------------------------------------------

    def seed(self) -> Workload:
        """Users (created in PostgreSQL: hashing a password per user would be the setup's whole cost; they
        authenticate with access tokens as after a login), then their follows, first reads and first tweets over
        HTTP through haproxy."""
        from rest_framework_simplejwt.tokens import AccessToken

        from social.models import User

        n = self.args.users
        User.objects.bulk_create([User(username=f"soak{i:05d}", password="!") for i in range(n)])
        users = list(User.objects.order_by("id").values_list("id", flat=True))
        headers = {}
        for u in users:
            token = AccessToken()
            token["user_id"] = u
            headers[u] = {"Authorization": f"Bearer {token}"}
        self.headers = headers
        rng = random.Random(self.args.seed)
        random.seed(self.args.seed)
        order = users[:]
        rng.shuffle(order)
        # Zipf-like popularity: a few authors gather many followers (the celebrities), most have a handful.
        weight = {u: 1 / (rank + 1) ** 0.8 for rank, u in enumerate(order)}
        readers = rng.sample(users, int(n * self.args.active))
        work = Workload(headers=headers, readers=readers, users=users, popularity=[weight[u] for u in users],
                        steady=set(rng.sample(readers, min(self.args.stream_readers, len(readers)))))
        edges = set()
        for u in users:
            while len(work.following[u]) < self.args.follows:
                work.following[u].add(work.pick_followee(u))
            edges |= {(u, v) for v in work.following[u]}
        say(f"{n} users ({len(readers)} readers); {len(edges):,} follows, first reads and "
            f"{self.args.initial_tweets} tweets each over HTTP")
        started = time.monotonic()
        self._http_batch([("POST", f"/v1/users/{v}/follow", u, None) for u, v in edges], 200)
        self._http_batch([("GET", "/v1/timeline/home?limit=20", u, None) for u in readers], 200)
        posts = [("POST", "/v1/tweets", u, {"content": f"first tweets {i} of {u}"})
                 for i in range(self.args.initial_tweets) for u in users]
        random.shuffle(posts)
        for (_, _, u, _), body in zip(posts, self._http_batch(posts, 201), strict=True):
            work.posted[u].append(int(body["tweet_id"]))
        from social.models import User as U

        counts = sorted(U.objects.values_list("followers_count", flat=True), reverse=True)
        self.results["meta"]["seed"] = {"users": n, "readers": len(readers), "follows": len(edges),
                                        "tweets": len(posts), "seconds": round(time.monotonic() - started, 1),
                                        "top_followers": counts[:10],
                                        "celebrities": sum(c >= self.args.threshold for c in counts)}
        say(f"seeded in {time.monotonic() - started:.0f} s; most followed: {counts[:8]}")
        return work

    def _http_batch(self, calls: list[tuple], expect: int) -> list[dict]:
        import requests

        local = threading.local()
        base = f"http://{HOST}:{self.port}"
        headers = self.headers

        def call(c: tuple) -> dict:
            method, path, user, body = c
            if not hasattr(local, "session"):
                local.session = requests.Session()
            r = local.session.request(method, base + path, json=body, headers=headers[user], timeout=60)
            if r.status_code != expect:
                raise SystemExit(f"setup: {method} {path} answered {r.status_code}: {r.text[:200]}")
            return r.json()

        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(call, calls))

    # --- The soak --------------------------------------------------------------------------------------------------

    def soak(self, work: Workload) -> None:
        import redis

        self.drain()  # the seed's fan-outs done: a stream opened now hears every tweet its timeline gets later
        self.readers = self._start_readers(work)
        pgids = {name: proc.pid for name, proc in self.procs.items() if name != "haproxy"}
        self.sampler = MemorySampler(pgids, self.args.sample_seconds,
                                     redis.Redis(host=HOST, port=self.redis_port, socket_timeout=2))
        seconds = self.args.minutes * 60
        rate = self.args.read_rate
        say(f"soak: {self.args.minutes:g} min, {rate:g} reads/s, {rate / 100:g} posts/s, "
            f"{rate / 200:g} follows, unfollows and deletes/s, through haproxy on {self.port}")
        self.t0 = time.monotonic()
        self.sampler.t0 = self.t0
        self.sampler.start()
        watcher_stop = threading.Event()

        def watch() -> None:  # progress once a minute, and whether a process died
            while not watcher_stop.wait(60):
                done = len(work.events)
                bad = sum(1 for _, _, s, _ in work.events[:done] if s >= 500)
                mem = self.sampler.samples[-1]["groups"] if self.sampler.samples else {}
                say(f"  {int((time.monotonic() - self.t0) / 60)} min: {done:,} answers, {bad} 5xx; RSS MB "
                    + ", ".join(f"{k} {v['rss'] / 2**20:.0f}" for k, v in mem.items())
                    + (f"; DIED: {self._check_alive()}" if self._check_alive() else ""))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        if self.args.stream_kill_at >= 0:
            # A thread that lives as long as the stack: the restarted process dies with the thread that
            # started it (stack.common.spawn: PR_SET_PDEATHSIG is per thread).
            threading.Thread(target=self._stream_fault, args=(self.args.stream_kill_at * seconds,),
                             daemon=True).start()
        jobs = loadgen.run_concurrently(
            loadgen.open_loop_async(HOST, self.port, work.read, rate=rate, duration=seconds,
                                    on_response=work.answered),
            loadgen.open_loop_async(HOST, self.port, work.post, rate=rate / 100, duration=seconds,
                                    on_response=work.answered),
            loadgen.open_loop_async(HOST, self.port, work.graph, rate=rate / 200, duration=seconds,
                                    on_response=work.answered),
        )
        watcher_stop.set()
        self.load_done.set()
        self.results["load"] = {name: job.summary() for name, job in zip(("reads", "posts", "graph"), jobs,
                                                                           strict=True)}
        for name, s in self.results["load"].items():
            say(f"  {name}: {s['completed']:,} answers, {s['rps']:.1f}/s, p50 {s['p50']} ms, p99 {s['p99']} ms, "
                f"statuses {s['statuses']}")
        self.drain()
        self.sampler.sample()
        self.sampler.stop.set()
        self.results["died"] = self._check_alive()

    def _start_readers(self, work: Workload) -> streams.Readers:
        """The steady users' streams, through haproxy: a /v1 one each, and Mastodon's WebSocket for some."""
        base = f"http://{HOST}:{self.port}"
        readers = streams.Readers()
        tokens = {u: work.headers[u]["Authorization"].removeprefix("Bearer ") for u in work.steady}
        for user in sorted(work.steady):
            readers.add_v1(f"user {user}", base, base, tokens[user])
        for user in sorted(work.steady)[: self.args.ws_readers]:
            readers.add_ws(f"ws {user}", base, tokens[user])
        readers.start()
        self.cleanup.callback(readers.stop)
        on = Counter(r.connections[-1].server for r in readers.all())
        say(f"{len(readers.v1)} /v1 and {len(readers.ws)} WebSocket stream readers connected: {dict(on)}")
        self.results["streams"] = {"readers": len(readers.v1), "ws_readers": len(readers.ws),
                                   "servers_at_start": dict(on)}
        return readers

    def _stream_fault(self, after: float) -> None:
        if not self.load_done.wait(after):
            self.kill_stream()
        self.stack_stopped.wait()

    def kill_stream(self, host: str = HOSTS[0]) -> None:
        """SIGKILL one host's stream process; its readers reconnect (through haproxy) to the other's. It is
        started again ``--stream-down`` seconds later, as a process manager would."""
        name = f"stream-{host}"
        on_it = [r for r in self.readers.all() if r.open and r.connections[-1].server == name]
        killed_at = time.time()
        common.signal_group(self.procs[name], signal.SIGKILL)
        self.procs[name].wait()
        say(f"  stream: SIGKILLed {name}, which held {len(on_it)} of {len(self.readers.all())} streams")
        time.sleep(self.args.stream_down)
        moved = {}
        for reader in on_it:
            after = [c for c in reader.connections if c.started > killed_at and c.status == "200"]
            moved[reader.name] = {"server": after[0].server, "seconds": round(after[0].started - killed_at, 2)} \
                if after else None
        self.procs[name] = procfile.start(self.commands["stream"], self.host_envs[host],
                                          stdout=(self.logs / f"{name}.log").open("a"), stderr=subprocess.STDOUT)
        self.sampler.pgids[name] = self.procs[name].pid
        back = [m for m in moved.values() if m]
        kill = {"process": name, "at_seconds": round(killed_at - (time.time() - time.monotonic() + self.t0), 1),
                "streams_on_it": len(on_it), "reconnected": len(back),
                "reconnected_to": dict(Counter(m["server"] for m in back)),
                "slowest_reconnect_seconds": max((m["seconds"] for m in back), default=None),
                "down_seconds": self.args.stream_down, "readers": moved}
        self.results.setdefault("streams", {})["kill"] = kill
        say(f"  stream: {len(back)} of {len(on_it)} reconnected within {kill['slowest_reconnect_seconds']} s, to "
            f"{kill['reconnected_to']}; {name} started again")

    def drain(self, timeout: float = 180) -> None:
        """Wait until no fan-out, follow update or broker message is outstanding (twice in a row)."""
        import redis

        from timelines.models import PendingFanout, PendingFollowUpdate

        broker = redis.Redis(host=HOST, port=self.redis_port, db=1)
        started, quiet = time.monotonic(), 0
        while time.monotonic() - started < timeout and quiet < 2:
            queued = sum(broker.llen(k) for k in broker.scan_iter() if broker.type(k) == b"list")
            busy = PendingFanout.objects.exists() or PendingFollowUpdate.objects.exists() or queued
            quiet = 0 if busy else quiet + 1
            time.sleep(1)
        self.results["drain_seconds"] = round(time.monotonic() - started, 1)
        say(f"fan-out and follow updates drained in {self.results['drain_seconds']} s")

    # --- The audit -------------------------------------------------------------------------------------------------

    def audit(self, work: Workload) -> None:
        import requests

        say(f"audit: scrolling all {len(work.users)} home timelines over HTTP, against PostgreSQL")
        truth = truth_timelines(work.users)
        base = f"http://{HOST}:{self.port}"
        statuses: Counter = Counter()
        local = threading.local()

        def scroll(user: int) -> tuple[int, list[int], int]:
            if not hasattr(local, "session"):
                local.session = requests.Session()
            seen, cursor, pages = [], None, 0
            while True:
                r = local.session.get(f"{base}/v1/timeline/home", headers=work.headers[user], timeout=60,
                                      params={"limit": self.args.audit_page} | ({"cursor": cursor} if cursor else {}))
                statuses[r.status_code] += 1
                pages += 1
                if r.status_code != 200:
                    return user, seen + [-r.status_code], pages
                body = r.json()
                seen += [int(t["tweet_id"]) for t in body["data"]]
                cursor = body["next_cursor"]
                if cursor is None:
                    return user, seen, pages

        with ThreadPoolExecutor(8) as pool:
            scrolled = list(pool.map(scroll, work.users))
        problems, totals = [], Counter()
        for user, seen, pages in scrolled:
            diff = compare(seen, truth[user])
            totals["users"] += 1
            totals["pages"] += pages
            totals["tweets_seen"] += len(seen)
            totals["tweets_expected"] += len(truth[user])
            totals["lost"] += len(diff["lost"])
            totals["extra"] += len(diff["extra"])
            totals["duplicates"] += diff["duplicates"]
            totals["out_of_order"] += not diff["ordered"]
            totals["past_cache"] += len(truth[user]) > self.args.max_entries
            if not diff["equal"]:
                problems.append({"user": user, **{k: v[:20] if isinstance(v, list) else v for k, v in diff.items()}})
        from timelines import store

        cached = len(store.existing(user_ids=work.users))
        self.results["audit"] = {**totals, "users_equal": totals["users"] - len(problems), "users_differing":
                                 len(problems), "statuses": dict(statuses), "cached_timelines": cached,
                                 "problems": problems[:50]}
        a = self.results["audit"]
        say(f"  {a['users_equal']}/{a['users']} timelines equal to PostgreSQL ({a['tweets_seen']:,} tweets over "
            f"{a['pages']:,} pages; {a['past_cache']} longer than the cache); lost {a['lost']}, extra {a['extra']}, "
            f"duplicates {a['duplicates']}, out of order {a['out_of_order']}; statuses {dict(statuses)}")

    def audit_streams(self) -> None:
        """What each stream reader received, against the head of its timeline (``chaos.streams``). A tweet a
        reader still holds that was deleted while it was away is told apart: deletions are not replayed."""
        from tweets.models import Tweet

        deleted = set(Tweet.objects.filter(deleted_at__isnull=False).values_list("id", flat=True))
        audit = self.readers.audit(quiet=3, timeout=60, deleted=deleted)
        self.readers.stop()
        problems = audit.problems()
        self.results.setdefault("streams", {}).update({
            "summary": audit.summary(), "problems": problems[:50], "openings": dict(audit.openings),
            "reconnects": audit.reconnects, "events": audit.events,
            "expected": sum(a.expected for a in audit.v1.values()),
            "out_of_order": sum(a.out_of_order for a in audit.v1.values()),
            "not_replayed": audit.not_replayed()[:50], "deleted_unheard": audit.deleted_unheard,
            "readers_equal": sum(a.ok for a in audit.v1.values()),
        })
        say(f"  streams: {audit.summary()}")

    def spread(self) -> None:
        """How the requests and tasks were shared between the two hosts: haproxy's per-server counters, each web
        server's own request log, and each Celery worker's log of tasks run."""
        stats = self.haproxy_stats()
        # The API's requests only: haproxy's health checks (/healthz) are not proxied requests.
        request_line = re.compile(r"timeline\.request (GET|POST|DELETE|PATCH|PUT) /v1/\S* (\d{3}) ")
        task_line = re.compile(r"Task ([\w.]+)\[[^\]]+\] succeeded")
        spread = {"haproxy": {}, "web_logs": {}, "worker_logs": {}, "streams_haproxy": {}}
        for h in HOSTS:
            # Streams: sessions (each stream is one), how they were answered, and the connections to a dead
            # process redispatched to the other (wredis) or refused (econ).
            row = stats.get(f"stream-{h}", {})
            spread["streams_haproxy"][f"stream-{h}"] = {k: int(row.get(k) or 0) for k in
                                                       ("stot", "hrsp_2xx", "hrsp_5xx", "econ", "wretr", "wredis",
                                                        "cli_abrt", "srv_abrt", "chkdown")}
            row = stats.get(f"web-{h}", {})
            spread["haproxy"][f"web-{h}"] = {k: int(row.get(k) or 0) for k in
                                            ("stot", "req_tot", "hrsp_2xx", "hrsp_4xx", "hrsp_5xx", "cli_abrt",
                                             "srv_abrt", "econ", "eresp", "wretr", "wredis")}
            statuses = Counter(m[2] for m in request_line.finditer((self.logs / f"web-{h}.log").read_text()))
            spread["web_logs"][f"web-{h}"] = {"requests": sum(statuses.values()), "statuses": dict(statuses)}
            tasks = Counter(m[1] for m in task_line.finditer((self.logs / f"worker-{h}.log").read_text()))
            spread["worker_logs"][f"worker-{h}"] = {"tasks": sum(tasks.values()), "by_task": dict(tasks)}
        self.results["spread"] = spread
        say("  haproxy: " + ", ".join(f"{k} {v['req_tot']:,} requests ({v['hrsp_5xx']} 5xx)"
                                      for k, v in spread["haproxy"].items()))
        say("  workers: " + ", ".join(f"{k} {v['tasks']:,} tasks" for k, v in spread["worker_logs"].items()))
        say("  streams: " + ", ".join(f"{k} {v['stot']:,} streams ({v['hrsp_5xx']} 5xx)"
                                      for k, v in spread["streams_haproxy"].items()))

    # --- Run -------------------------------------------------------------------------------------------------------

    def run(self) -> int:
        started = time.monotonic()
        work = None
        try:
            self.start()
            work = self.seed()
            self.soak(work)
            self.audit(work)
            self.audit_streams()
            self.spread()
        finally:
            self.results["meta"]["seconds"] = round(time.monotonic() - started, 1)
            self.results["meta"]["load_end"] = os.getloadavg()[0]
            if getattr(self, "sampler", None):
                self.sampler.stop.set()
                self.results["memory"] = {"samples": self.sampler.samples}
            self.load_done.set()
            self.cleanup.close()
            self.stack_stopped.set()
        self.finish(work)
        return 0 if self.results["passed"] else 1

    def finish(self, work: Workload | None) -> None:
        from bench.soak_report import write_report

        r = self.results
        statuses = Counter()
        for s in r.get("load", {}).values():
            statuses.update({int(k): v for k, v in s["statuses"].items()})
        audit = r.get("audit", {})
        r["checks"] = {
            "no_5xx_or_unanswered": not any(code >= 500 or code == 0 for code in statuses)
            and not any(int(k) >= 500 for k in audit.get("statuses", {})),
            "audit_equal": bool(audit) and audit["users_differing"] == 0,
            "no_process_died": not r.get("died"),
            "streams_equal": "summary" in r.get("streams", {}) and not r["streams"]["problems"],
        }
        r["passed"] = all(r["checks"].values())
        if work is not None:
            r["series"] = series(work.events, self.t0, self.args.bucket_seconds)
        write_report(r, self.out)
        say(f"{'PASSED' if r['passed'] else 'FAILED'} {r['checks']} in {r['meta']['seconds']:.0f} s: "
            f"{self.out / 'report.md'}")


def series(events: list[tuple[float, str, int, float]], t0: float, bucket: float) -> list[dict]:
    """Per ``bucket`` seconds of the soak: answers a second (reads, writes), 5xx, and the reads' p50 and p99."""
    buckets: dict[int, dict] = {}
    for at, kind, status, latency in events:
        b = buckets.setdefault(int((at - t0) // bucket), {"reads": [], "writes": 0, "errors": 0})
        if kind.startswith("read"):
            b["reads"].append(latency)
        else:
            b["writes"] += 1
        b["errors"] += status >= 500
    rows = []
    for i in sorted(buckets):
        b = buckets[i]
        reads = sorted(b["reads"])
        rows.append({"t": (i + 1) * bucket, "read_rps": round(len(reads) / bucket, 1),
                     "write_rps": round(b["writes"] / bucket, 2), "errors": b["errors"],
                     "read_p50": _pct(reads, 50), "read_p99": _pct(reads, 99)})
    return rows


def _pct(ordered: list[float], p: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, math.ceil(len(ordered) * p / 100) - 1)], 2)


HAPROXY_CONFIG = """\
# Generated by bench/soak.py: one address in front of the two web servers and the two stream processes.
global
    maxconn 4096
    stats socket {socket} mode 600 level admin

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    # Client connections stay open; each request is balanced on its own and goes to the web server on a fresh
    # connection. Reusing idle server connections would race gunicorn's 2 s keep-alive timeout (a request written
    # as gunicorn closes the connection), and retrying it is not safe for a POST.
    option http-server-close

frontend soak
    bind {host}:{port}
    # Which server answered (the stream readers record it: where each stream went).
    http-response set-header {served_by} %s
    # The live streams (Server-Sent Events, and Mastodon's WebSocket upgrade) to the stream processes.
    acl streaming path_beg /api/v1/streaming
    acl streaming path /v1/timeline/home/stream
    use_backend stream if streaming
    default_backend web

# gunicorn's sync workers (the default) serve one connection at a time: a request is read whole here before it
# is passed on, so a slow client holds a connection of haproxy's, never a worker.
backend web
    balance roundrobin
    option http-buffer-request
    option httpchk GET /healthz
{servers}

# A stream lasts as long as its client stays: the heartbeat (a comment every 15 s on SSE, a ping on a WebSocket)
# keeps it inside "timeout server" and "timeout client"; an upgraded WebSocket is a tunnel. A stream opened towards
# a process that has just died is sent to the other one (redispatch), and a dead one is out after 2 failed checks.
backend stream
    balance leastconn
    option httpchk GET /healthz
    option redispatch
    retries 2
    timeout server 60s
    timeout tunnel 1h
{stream_servers}
"""


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10, help="length of the mixed workload (default 10)")
    parser.add_argument("--read-rate", type=float, default=100, help="timeline reads a second (posts: 1/100 of it)")
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--active", type=float, default=0.8, help="share of users who read (the rest only post)")
    parser.add_argument("--follows", type=int, default=20, help="accounts each user follows at the start")
    parser.add_argument("--initial-tweets", type=int, default=2, help="tweets each user posts before the soak")
    parser.add_argument("--max-entries", type=int, default=40,
                        help="TIMELINE_MAX_ENTRIES: small, so that timelines outgrow their cache during the soak "
                             "and the audit scrolls past it into PostgreSQL")
    parser.add_argument("--threshold", type=int, default=100,
                        help="TIMELINE_CELEBRITY_THRESHOLD: low, so that the most followed users are pulled")
    parser.add_argument("--web-workers", type=int, default=common.cpu_count(), help="gunicorn workers per host")
    parser.add_argument("--worker-processes", type=int, default=max(1, common.cpu_count() // 2),
                        help="Celery processes per host")
    parser.add_argument("--sample-seconds", type=float, default=5, help="memory sampling period")
    parser.add_argument("--bucket-seconds", type=float, default=10, help="time series resolution")
    parser.add_argument("--audit-page", type=int, default=50, help="page size of the audit's scroll")
    parser.add_argument("--stream-readers", type=int, default=20,
                        help="readers (whose follows stay as seeded) holding a /v1 stream open throughout")
    parser.add_argument("--ws-readers", type=int, default=4,
                        help="of those, how many also hold Mastodon's WebSocket stream open")
    parser.add_argument("--stream-kill-at", type=float, default=0.5,
                        help="when stream-a is SIGKILLed, as a share of the run (a negative value: never)")
    parser.add_argument("--stream-down", type=float, default=10,
                        help="seconds stream-a stays dead before it is started again")
    parser.add_argument("--database", default=DATABASE, help=f"the database, recreated empty (default {DATABASE})")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, help="result directory (default bench/results/soak-<date>)")
    args = parser.parse_args()
    args.out = args.out or REPO / "bench" / "results" / f"soak-{datetime.now().strftime('%Y-%m-%d')}"
    args.out.mkdir(parents=True, exist_ok=True)
    common.on_signals(common.raise_interrupted)
    try:
        return Soak(args).run()
    except common.Interrupted as exc:
        say(f"{exc} received: stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main())
