"""The faults, the load during each, and the audit after each.

    .venv/bin/python -m chaos [--quick] [--write docs/reliability.md]

A load generator (threads with ``requests``) reads first pages and posts, as
random users, through every fault; posts carry an ``Idempotency-Key`` and are
retried with it after a connection error, as a careful client would. After each
fault the load stops, the stack is given time to converge (no fan-out left
pending), and every user's timeline is scrolled over HTTP to its end and
compared with the tweets PostgreSQL says they should see; the followers of the
large fan-out are also checked in Redis (each tweet at most once, in order).
Acknowledged posts must all be in PostgreSQL (nothing lost), once each.

Stream readers stay connected through every fault (``chaos.streams``): ``/v1``
readers that reconnect with ``Last-Event-ID`` as a careful client does, and a
few Mastodon WebSocket readers that only reconnect. After each fault, once they
are all connected again and quiet, what each ``/v1`` reader received must equal
the head of its timeline (no tweet missing, none twice), and no WebSocket reader
may have received a tweet twice on one connection.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import psycopg
import requests

from . import streams
from .stack import REPO, Stack, say

PROFILES = {
    # users, followers of the large fan-out, seconds of fault, seconds of recovery, load threads, batch size;
    # stream readers: /v1 ones of users and of fans, Mastodon WebSocket ones of users
    "full": {"users": 40, "fans": 3000, "fault_s": 12, "recover_s": 6, "threads": 6, "batch": 20,
             "v1_readers": 40, "fan_readers": 30, "ws_readers": 8, "long_outage_s": 180},
    "quick": {"users": 12, "fans": 600, "fault_s": 4, "recover_s": 3, "threads": 4, "batch": 10,
              "v1_readers": 12, "fan_readers": 10, "ws_readers": 4, "long_outage_s": 20},
}

SEED = """
import json
from social import services
from social.models import Follow, User
from timelines import rebuilds, store
users = [services.user_register(username=f"c{{i}}", password="chaos-pass-1234") for i in range({users})]
star = services.user_register(username="star", password="chaos-pass-1234")
fans = User.objects.bulk_create([User(username=f"fan{{i}}", password="!", following_count=1) for i in range({fans})])
Follow.objects.bulk_create([Follow(follower=f, followee=star, state="accepted") for f in fans], batch_size=1000)
User.objects.filter(id=star.id).update(followers_count={fans})
import random
rng = random.Random(7)
for u in users:
    for other in rng.sample([x for x in users if x.id != u.id], 5) + [star]:
        services.follow_create(follower=u, followee_id=other.id)
for f in fans:  # the fans read their timelines: cached, so the fan-out writes them
    rebuilds.timeline_rebuild(user_id=f.id, generation=store.generation(user_id=f.id))
print(json.dumps({{"users": [u.id for u in users], "star": star.id, "fans": [f.id for f in fans]}}))
"""

TRUTH_SQL = """
SELECT t.id FROM tweets_tweet t JOIN social_user a ON a.id = t.author_id
WHERE t.deleted_at IS NULL AND a.is_active
  AND (t.author_id = %(u)s OR t.author_id IN (
       SELECT followee_id FROM social_follow WHERE follower_id = %(u)s AND state = 'accepted'))
ORDER BY t.id DESC
"""


# Fan-outs pending for more than 10 s (their tweet's time is its id's).
LATE_FANOUTS_SQL = """
SELECT count(*) FROM timelines_pendingfanout p JOIN tweets_tweet t ON t.id = p.tweet_id
WHERE t.created_at < now() - interval '10 seconds'
"""


@dataclass
class Sample:
    op: str  # read | post
    status: str  # the HTTP status, or "conn-error"
    ms: float


@dataclass
class FaultResult:
    name: str
    what: str
    samples: list[Sample] = field(default_factory=list)
    audit: str = ""
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    streams: str = ""  # what the stream readers saw, and their audit

    def counts(self, op: str) -> str:
        c = collections.Counter(s.status for s in self.samples if s.op == op)
        return ", ".join(f"{k}: {v}" for k, v in sorted(c.items())) or "none"

    def p99(self, op: str) -> str:
        ms = sorted(s.ms for s in self.samples if s.op == op and s.status != "conn-error")
        return f"{ms[min(len(ms) - 1, int(len(ms) * 0.99))]:.0f}" if ms else "-"

    def statuses(self, op: str) -> set[str]:
        return {s.status for s in self.samples if s.op == op}

    def broken_promises(self) -> list[str]:
        """What clients saw beyond the AP promise: anything but 200 reads and 201 posts (or 200, the
        replay of a post retried with its key), save the answers a fault is allowed (``ALLOWED``)."""
        allowed = ALLOWED.get(self.name, {})
        broken = []
        for op, ok in (("read", {"200"}), ("post", {"201", "200"})):
            unexpected = self.statuses(op) - ok - allowed.get(op, set())
            if unexpected:
                broken.append(f"{op}s answered {', '.join(sorted(unexpected))}")
        if "200" not in self.statuses("read"):
            broken.append("no read succeeded")
        return broken

    @property
    def ok(self) -> bool:
        return not self.problems and not self.broken_promises()


# What clients may see during a fault besides 200 reads and 201 posts.
ALLOWED = {
    "web worker SIGKILL mid-request": {"read": {"conn-error"}, "post": {"conn-error"}},  # retried with the key
    "PostgreSQL down, then back": {"post": {"503"}},  # writes refused, plainly; cached first pages still read
    "PostgreSQL's disk full, then space again": {"post": {"503"}},  # writes refused, plainly; reads go on
    "replica promoted, the primary gone": {"post": {"503"}},  # writes refused until pointed at the new primary
    # The same, once each process has waited out its bound (DATABASE_QUERY_TIMEOUT) and its breaker opened.
    "PostgreSQL frozen (SIGSTOP), then SIGCONT": {"post": {"503"}},
    # Nothing beyond the promise: posts mint with worker ids leased from PostgreSQL, whatever the outage's length.
    "Redis down for minutes, restarted empty": {},
}


class Load:
    """Threads reading first pages and posting as random users, until stopped."""

    def __init__(self, base: str, tokens: dict[int, str], threads: int):
        self.base, self.tokens, self.threads = base, tokens, threads
        self.sink: list[Sample] = []
        self.acked: set[int] = set()  # tweet ids answered 201 (or replayed)
        self.keys: dict[str, int] = {}
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self, sink: list[Sample]) -> None:
        self.sink, self._stop = sink, threading.Event()
        self._workers = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)]
        for w in self._workers:
            w.start()

    def stop(self) -> None:
        self._stop.set()
        for w in self._workers:
            w.join(30)

    def _record(self, op: str, status: str, started: float) -> None:
        with self._lock:
            self.sink.append(Sample(op, status, (time.monotonic() - started) * 1000))

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        session = requests.Session()
        users = list(self.tokens)
        while not self._stop.is_set():
            user = rng.choice(users)
            headers = {"Authorization": f"Bearer {self.tokens[user]}"}
            if rng.random() < 0.25:
                self._post(session, headers, f"tweet {uuid.uuid4().hex[:8]} by {user}")
            else:
                started = time.monotonic()
                try:
                    r = session.get(f"{self.base}/v1/timeline/home", headers=headers, timeout=15)
                    self._record("read", str(r.status_code), started)
                except requests.RequestException:
                    self._record("read", "conn-error", started)
                    session = requests.Session()
                    time.sleep(0.1)

    def _post(self, session, headers, content: str) -> None:
        key = uuid.uuid4().hex
        for _attempt in range(4):  # a careful client retries a post it got no answer to, with its key
            started = time.monotonic()
            try:
                r = session.post(f"{self.base}/v1/tweets", json={"content": content}, timeout=15,
                                 headers=headers | {"Idempotency-Key": key})
            except requests.RequestException:
                self._record("post", "conn-error", started)
                time.sleep(0.3)
                continue
            self._record("post", str(r.status_code), started)
            if r.status_code in (200, 201):
                with self._lock:
                    tweet_id = int(r.json()["tweet_id"])
                    if key in self.keys and self.keys[key] != tweet_id:
                        raise AssertionError(f"key {key} answered two tweets")
                    self.keys[key] = tweet_id
                    self.acked.add(tweet_id)
            return


class Chaos:
    def __init__(self, stack: Stack, profile: dict):
        self.stack, self.p = stack, profile
        self.results: list[FaultResult] = []
        self.db = psycopg.connect(stack.database_url.replace("postgres://", "postgresql://"), autocommit=True)
        seeded = json.loads(stack.manage_shell(SEED.format(users=profile["users"], fans=profile["fans"])).strip()
                            .splitlines()[-1])
        self.users, self.star, self.fans = seeded["users"], seeded["star"], seeded["fans"]
        self.tokens = {u: self.token(u) for u in self.users}
        self.load = Load(stack.base, self.tokens, profile["threads"])
        self.audit_fans = random.Random(3).sample(self.fans, min(30, len(self.fans)))
        self.readers = streams.Readers()
        for user in self.users[: profile["v1_readers"]]:
            self.readers.add_v1(f"user {user}", stack.stream_base, stack.base, self.tokens[user])
        for fan in self.audit_fans[: profile["fan_readers"]]:
            self.readers.add_v1(f"fan {fan}", stack.stream_base, stack.base, self.token(fan))
        for user in self.users[: profile["ws_readers"]]:
            self.readers.add_ws(f"ws {user}", stack.stream_base, self.tokens[user])

    def token(self, user_id: int) -> str:
        """An access token, as ``POST /v1/auth/token`` would sign it (no login per user needed)."""
        now = datetime.now(UTC)
        claims = {"token_type": "access", "exp": now + timedelta(hours=2), "iat": now, "jti": uuid.uuid4().hex,
                  "user_id": str(user_id)}
        return jwt.encode(claims, self.stack.secret_key, algorithm="HS256")

    def get(self, user_id: int, **params) -> requests.Response:
        return requests.get(f"{self.stack.base}/v1/timeline/home", params=params, timeout=30,
                            headers={"Authorization": f"Bearer {self.tokens.get(user_id) or self.token(user_id)}"})

    def post_as(self, user_id: int, content: str) -> int:
        r = requests.post(f"{self.stack.base}/v1/tweets", json={"content": content}, timeout=30,
                          headers={"Authorization": f"Bearer {self.token(user_id)}"})
        assert r.status_code == 201, r.text
        return int(r.json()["tweet_id"])

    # --- Around each fault ----------------------------------------------------------

    @contextlib.contextmanager
    def fault(self, name: str, what: str):
        result = FaultResult(name, what)
        self.results.append(result)
        say(f"fault: {name}")
        self.load.start(result.samples)
        try:
            yield result
            time.sleep(self.p["recover_s"])
        finally:
            self.load.stop()
        self.converge(result)
        self.audit(result)
        self.audit_streams(result)
        say(f"  {name}: reads {result.counts('read')}; posts {result.counts('post')}; {result.audit}")
        say(f"  streams: {result.streams}")
        for problem in result.problems[:5] + result.broken_promises():
            say(f"  PROBLEM {problem}")

    def converge(self, result: FaultResult, timeout: float = 120) -> None:
        """Wait until no fan-out is pending (the reconciler's work is done)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(psycopg.Error):
                if not self.db.execute("SELECT count(*) FROM timelines_pendingfanout").fetchone()[0]:
                    return
            time.sleep(0.5)
        result.problems.append(f"fan-outs still pending after {timeout:.0f} s")

    def truth(self, user_id: int) -> list[int]:
        return [row[0] for row in self.db.execute(TRUTH_SQL, {"u": user_id}).fetchall()]

    def scroll(self, user_id: int) -> list[int]:
        seen, cursor = [], None
        while True:
            r = self.get(user_id, limit=50, **({"cursor": cursor} if cursor else {}))
            if r.status_code != 200:
                raise AssertionError(f"user {user_id}: a page answered {r.status_code} {r.text[:200]}")
            body = r.json()
            seen += [int(t["tweet_id"]) for t in body["data"]]
            if body["next_cursor"] is None:
                return seen
            cursor = body["next_cursor"]

    def audit(self, result: FaultResult) -> None:
        checked = 0
        for user in self.users + self.audit_fans:
            try:
                got = self.scroll(user)
            except AssertionError as error:
                result.problems.append(str(error))
                continue
            checked += 1
            want = self.truth(user)
            if got != want:
                missing, extra = set(want) - set(got), [t for t in got if t not in set(want)]
                dups = len(got) - len(set(got))
                result.problems.append(f"user {user}: {len(missing)} missing, {len(extra)} extra, {dups} repeated")
        # Acknowledged posts: all in PostgreSQL, each key one tweet.
        acked = sorted(self.load.acked)
        found = {row[0] for row in self.db.execute("SELECT id FROM tweets_tweet WHERE id = ANY(%s)",
                                                   (acked,)).fetchall()}
        lost = len(set(acked) - found)
        if lost:
            result.problems.append(f"{lost} acknowledged tweets are not in PostgreSQL")
        keys = self.db.execute("SELECT count(*), count(DISTINCT tweet_id) FROM tweets_idempotencykey").fetchone()
        doubled = self.db.execute(
            "SELECT count(*) FROM tweets_tweet t WHERE t.content LIKE 'tweet %%' AND EXISTS ("
            " SELECT 1 FROM tweets_tweet o WHERE o.content = t.content AND o.id <> t.id)").fetchone()[0]
        if doubled or keys[0] != keys[1]:
            result.problems.append(f"{doubled} posts stored twice")
        fan_problems = self.audit_fan_lists()
        result.problems += fan_problems
        result.audit = (f"{checked} timelines scrolled = PostgreSQL; {len(self.fans)} fan lists checked; "
                        f"{len(acked)} acked posts, {lost} lost, {doubled} doubled" if not result.problems
                        else f"{len(result.problems)} problems")

    def audit_streams(self, result: FaultResult) -> None:
        """Every stream reader connected again and quiet; each ``/v1`` reader's tweets = its timeline's head."""
        audit = self.readers.audit(quiet=2.0, timeout=60)
        result.streams = audit.summary()
        result.problems += audit.problems()
        for miss in audit.not_replayed()[:5]:
            result.notes.append(f"not replayed to {miss['reader']}: tweet {miss['tweet_id']}, older than the "
                                f"Last-Event-ID {miss['last_event_id']} it reconnected with")
        self.last_stream_audit = audit

    def audit_fan_lists(self) -> list[str]:
        """Every cached timeline of the star's fans holds exactly the star's tweets, once, newest first."""
        star_tweets = [str(t).encode() for t in self.truth_of_author(self.star)]
        redis = self.stack.cache.client()
        pipe = redis.pipeline(transaction=False)
        for fan in self.fans:
            pipe.lrange(f"tl:{{{fan}}}", 0, -1)
        problems = 0
        for entries in pipe.execute():
            if not entries:
                continue  # not cached (Redis restarted empty): rebuilt on the next read
            ids = entries[:-1] if entries[-1] == b"0" else entries
            if ids != star_tweets[: len(ids)] or (entries[-1] == b"0" and ids != star_tweets):
                problems += 1
        return [f"{problems} fan timelines in Redis differ from the star's tweets"] if problems else []

    def truth_of_author(self, author: int) -> list[int]:
        return [row[0] for row in self.db.execute(
            "SELECT id FROM tweets_tweet WHERE author_id = %s AND deleted_at IS NULL ORDER BY id DESC",
            (author,)).fetchall()]

    # --- The faults -----------------------------------------------------------------

    def web_worker_killed(self) -> None:
        with self.fault("web worker SIGKILL mid-request", "a gunicorn worker SIGKILLed every second, under load"):
            for _ in range(int(self.p["fault_s"])):
                time.sleep(1)
                self.stack.kill_web_worker()
        self.stack.wait_until_ready()

    def stream_killed(self) -> None:
        with self.fault("stream process SIGKILL", "the stream process SIGKILLed under load (every stream dropped); "
                        "restarted, as the stack's supervisor does"):
            time.sleep(1)
            self.stack.kill_stream()
            time.sleep(self.p["fault_s"] / 2)
            self.stack.start_process("stream")
            self.stack.wait_until_streaming()

    def worker_killed_mid_fanout(self) -> None:
        with self.fault("worker SIGKILL during a large fan-out",
                        f"the star posts to {len(self.fans)} cached timelines; the Celery worker is SIGKILLed "
                        "mid-fan-out while others post; restarted") as result:
            tweet = self.post_as(self.star, "to every fan")
            redis = self.stack.cache.client()
            # Kill once some of its batches (``fo:{tweet}``, the outstanding ranges) are written.
            deadline, batches = time.monotonic() + 30, 0
            while time.monotonic() < deadline:
                pending = redis.hlen(f"fo:{tweet}")
                batches = max(batches, pending)
                if batches and pending <= batches * 2 // 3:
                    break
                time.sleep(0.002)
            self.stack.kill_worker()
            held = sum(str(tweet).encode() in redis.lrange(f"tl:{{{f}}}", 0, 1) for f in self.fans)
            result.notes.append(f"killed with {held} of {len(self.fans)} fans delivered")
            self.post_as(self.users[0], "posted while the worker is dead")
            time.sleep(self.p["fault_s"] / 2)
            self.stack.start_process("worker")
        self.check_fans_got_once(result, tweet)

    def check_fans_got_once(self, result: FaultResult, tweet: int) -> None:
        """Every fan with a stream open got the fanned-out tweet exactly once."""
        counts = {reader.name: reader.received().count(tweet) for reader, _ in self.readers.v1.values()
                  if reader.name.startswith("fan ")}
        wrong = {name: n for name, n in counts.items() if n != 1}
        result.notes.append(f"{len(counts) - len(wrong)} of {len(counts)} fans' /v1 streams got it exactly once")
        if wrong:
            result.problems.append(f"fans' streams got the fanned-out tweet {tweet} not once: {wrong}")

    def broker_down(self) -> None:
        with self.fault("broker down, then back", "the broker's Redis SIGKILLed; restarted empty"):
            self.stack.broker.kill()
            time.sleep(self.p["fault_s"])
            self.stack.broker.start()

    def redis_killed(self) -> None:
        with self.fault("Redis killed, restarted empty", "the product's Redis SIGKILLed under load; "
                        "restarted empty"):
            self.stack.cache.kill()
            time.sleep(self.p["fault_s"])
            self.stack.cache.start()

    def redis_frozen(self) -> None:
        with self.fault("Redis frozen (SIGSTOP), then SIGCONT", "the product's Redis stopped under load; continued"):
            self.stack.cache.signal(signal.SIGSTOP)
            try:
                time.sleep(self.p["fault_s"])
            finally:
                self.stack.cache.signal(signal.SIGCONT)

    def redis_long_outage(self) -> None:
        seconds = self.p["long_outage_s"]
        with self.fault("Redis down for minutes, restarted empty",
                        f"the product's Redis SIGKILLed under load for {seconds} s, longer than the stack's "
                        f"Snowflake lease ({self.stack.snowflake_lease_s} s); restarted empty") as result:
            self.stack.cache.kill()
            killed_at, first = time.monotonic(), len(result.samples)
            while (left := seconds - (time.monotonic() - killed_at)) > 0:
                time.sleep(min(30, left))
                acked = sum(s.op == "post" and s.status in ("200", "201") for s in result.samples[first:])
                say(f"  Redis down {time.monotonic() - killed_at:.0f} of {seconds} s: {acked} posts acknowledged")
            during = result.samples[first:]
            self.stack.cache.start()
            posts = [s for s in during if s.op == "post"]
            result.notes.append(f"{sum(s.status in ('200', '201') for s in posts)} of {len(posts)} posts "
                                "acknowledged while Redis was down")
            # Every post of the outage left a fan-out pending; time their sending, under the load that goes on.
            back_at, late = time.monotonic(), -1
            while late and time.monotonic() - back_at < 600:
                time.sleep(5)
                with contextlib.suppress(psycopg.Error):
                    late = self.db.execute(LATE_FANOUTS_SQL).fetchone()[0]
                say(f"  Redis back {time.monotonic() - back_at:.0f} s: {late} fan-outs pending for over 10 s")
            result.notes.append(f"the fan-outs pending since the outage all done {time.monotonic() - back_at:.0f} s "
                                "after Redis came back" if not late else f"{late} fan-outs still late after 600 s")
        ids = list(self.load.keys.values())  # every post acknowledged so far, one per key
        if len(set(ids)) != len(ids):
            result.problems.append(f"{len(ids) - len(set(ids))} tweet ids answered for two posts")

    def postgres_down(self) -> None:
        with self.fault("PostgreSQL down, then back", "PostgreSQL stopped (fast shutdown) under load; started"):
            self.stack.stop_postgres()
            try:
                time.sleep(self.p["fault_s"])
            finally:
                self.stack.start_postgres()
                self.db = psycopg.connect(self.stack.database_url.replace("postgres://", "postgresql://"),
                                          autocommit=True)

    def postgres_disk_full(self) -> None:
        volume = self.stack.database_on_volume(self.db)
        with self.fault("PostgreSQL's disk full, then space again",
                        f"every table and index on a {volume.size_mb} MB volume of their own, filled up under load "
                        "(the WAL's volume has room); the ballast removed") as result:
            time.sleep(1)
            filled = volume.fill()
            try:
                time.sleep(self.p["fault_s"])
            finally:
                volume.free()
            result.notes.append(f"filled with {filled >> 20} MB of ballast")
        if "503" not in result.statuses("post"):
            result.problems.append("no post was refused: the volume never filled up under the posts")
        try:
            self.post_as(self.users[0], "posted once there is space again")
        except AssertionError as error:
            result.problems.append(f"a post once there was space again: {error}")

    def replica_promoted(self) -> None:
        """Last, when run: the stack's replica becomes its primary, and it has no replica after."""
        dropped = self.users[: len(self.users) // 2]
        with self.fault("replica promoted, the primary gone",
                        "the primary crashed (immediate stop) under load and its synchronous replica was promoted; "
                        f"{len(dropped)} users' cached timelines dropped, so their reads rebuild from the replica; "
                        "then, with the load paused, DATABASE_URL pointed at the promoted server and every process "
                        "restarted") as result:
            self.stack.fail_over()
            self.stack.cache.client().delete(*[f"tl:{{{user}}}" for user in dropped])
            time.sleep(self.p["fault_s"])
            during = collections.Counter(f"{s.op} {s.status}" for s in result.samples)
            result.notes.append(f"before the restart: {', '.join(f'{k}: {v}' for k, v in sorted(during.items()))}")
            self.load.stop()
            self.stack.use_promoted()
            self.db = psycopg.connect(self.stack.database_url.replace("postgres://", "postgresql://"),
                                      autocommit=True)
            self.stack.wait_until_streaming()
            self.load.start(result.samples)
    def postgres_frozen(self) -> None:
        with self.fault("PostgreSQL frozen (SIGSTOP), then SIGCONT", "the PostgreSQL server and every backend "
                        "stopped under load; continued"):
            self.stack.signal_postgres(signal.SIGSTOP)
            try:
                time.sleep(self.p["fault_s"])
            finally:
                self.stack.signal_postgres(signal.SIGCONT)

    def warm_up(self) -> None:
        """Before any fault: the stream readers connected, every user has posted and read (caches, leases
        and pools warm)."""
        self.readers.start()
        for user in self.users:
            self.post_as(user, f"hello from {user}")
        for user in self.users:
            self.scroll(user)
        self.post_as(self.star, "the star's first")

    def run(self, names: list[str] | None = None) -> list[FaultResult]:
        # The failover leaves the stack without a replica: it comes last.
        names = sorted(names or FAULTS, key=lambda name: name == "replica_promoted")
        try:
            self.warm_up()
            for name in names:
                getattr(self, name)()
        finally:
            self.readers.stop()
        return self.results


FAULTS = ["web_worker_killed", "stream_killed", "worker_killed_mid_fanout", "broker_down", "redis_killed",
          "redis_frozen", "redis_long_outage", "postgres_down", "postgres_frozen", "postgres_disk_full",
          "replica_promoted"]


def table(results: list[FaultResult]) -> str:
    lines = ["| fault | what was done | reads (status: count) | read p99 ms | posts (status: count) | "
             "post p99 ms | audit | stream readers |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        what = r.what + ("; " + "; ".join(r.notes) if r.notes else "")
        audit = ("OK: " if not r.problems else "FAILED: ") + (r.audit if not r.problems else "; ".join(r.problems[:3]))
        if r.broken_promises():
            audit += "; CLIENTS: " + "; ".join(r.broken_promises())
        lines.append(f"| {r.name} | {what} | {r.counts('read')} | {r.p99('read')} | {r.counts('post')} | "
                     f"{r.p99('post')} | {audit} | {r.streams} |")
    return "\n".join(lines)


def write_table(path: Path, text: str, meta: str) -> None:
    """Replace the run's table in ``path`` (between the chaos markers)."""
    begin, end = "<!-- chaos-table:begin -->", "<!-- chaos-table:end -->"
    doc = path.read_text()
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{meta}\n\n{text}\n{end}{tail}")


def busy(load: float) -> str:
    """A note for the table when others were using the machine (a load above its cores before the suite began)."""
    return (": the machine was busy with other work, so compare the latencies between faults only"
            if load > (os.cpu_count() or 1) else "")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the bounded form (as in the test suite)")
    parser.add_argument("--fault", action="append", choices=FAULTS, help="only these faults (repeatable)")
    parser.add_argument("--write", type=Path, help="put the table into this markdown file (docs/reliability.md)")
    args = parser.parse_args()
    profile = PROFILES["quick" if args.quick else "full"]
    started, load = time.monotonic(), os.getloadavg()[0]
    with Stack(web_workers=2, fanout_batch=profile["batch"]) as stack:
        results = Chaos(stack, profile).run(args.fault)
    text = table(results)
    print(text)
    meta = (f"Run of {datetime.now(UTC):%Y-%m-%d} (`make chaos`, profile {'quick' if args.quick else 'full'}: "
            f"{profile['users']} users, {profile['fans']} fans of the fanned-out author, {profile['fault_s']} s "
            f"per fault, {profile['threads']} client threads; {time.monotonic() - started:.0f} s in all). "
            f"Load average {load:.1f} at the start and {os.getloadavg()[0]:.1f} at the end, on {os.cpu_count()} "
            f"cores{busy(load)}.")
    if args.write:
        write_table(REPO / args.write if not args.write.is_absolute() else args.write, text, meta)
    return 0 if all(r.ok for r in results) else 1
