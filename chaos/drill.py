"""The restore drill: a backup counts once a restore from it has been seen to work.

On a stack of its own (chaos/stack.py), with the WAL archive streaming as a synchronous standby
(``python -m stack archive-wal``, so a commit is acknowledged only once the archive has it):
people register, follow and post over the HTTP API; a base backup is taken (``python -m stack
backup``, what ``make backup`` runs); more posts, follows, an unfollow and deletes follow; every
timeline is scrolled over HTTP, as its reader saw it; then three people post as fast as they are
answered, and in the middle of that stream PostgreSQL is killed (``pg_ctl stop -m immediate``) and
its data directory deleted. Then ``python -m stack restore`` builds a new data directory on the same
port from the base backup and the archive, the archive is started again, the stack's own Redis is
flushed (so every timeline is rebuilt from PostgreSQL), and the drill checks over HTTP: every
acknowledged tweet and follow is back, the deleted tweets and the unfollow stay so, every timeline
scrolled again is what its reader saw plus the last acknowledged posts (and perhaps posts that got no
answer but committed: allowed, not promised), and a post made after the restore is seen by its
author's followers.

RPO is what was lost: the acknowledged writes missing after the restore (the last posts went in
after the base backup and the last scroll, up to the kill, so only the archive had them). RTO is
the time from the start of the restore until ``/readyz`` finds PostgreSQL again and the web takes
a post.

    .venv/bin/python -m chaos.drill                  # prints what it measured; docs/operations.md has the last run
    .venv/bin/python -m chaos.drill --asynchronous   # commits do not wait for the archive: what may be lost then
"""
from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

import psycopg
import requests

from stack.backup import ARCHIVE_NAME

from .stack import REPO, Stack, say

USERS = 6
POSTS_EACH = 3


@dataclass
class DrillResult:
    acked_tweets: int = 0
    follows: int = 0
    backup_seconds: float = 0.0
    backup_output: str = ""
    last_words: int = 0  # posts acknowledged in the stream PostgreSQL was killed in
    last_ack_ms: float = 0.0  # when the last of them was answered, from the start of the kill
    in_doubt: set[int] = field(default_factory=set)  # posts never acknowledged that committed all the same
    restore_seconds: float = 0.0
    rto_seconds: float = 0.0
    lost: list[str] = field(default_factory=list)  # acknowledged writes not back: the RPO
    problems: list[str] = field(default_factory=list)

    def last_ack(self) -> str:
        """When the last post before the kill was answered; after the kill began, the commit came
        before the kill reached it."""
        when = "after" if self.last_ack_ms >= 0 else "before"
        return f"answered {abs(self.last_ack_ms):.0f} ms {when} the kill began"

    def summary(self) -> str:
        return (f"{self.acked_tweets} acknowledged tweets and {self.follows} follows; base backup in "
                f"{self.backup_seconds:.1f} s; PostgreSQL killed under a stream of posts ({self.last_words} "
                f"acknowledged, the last {self.last_ack()}; {len(self.in_doubt)} "
                f"unanswered that committed all the same); RPO: {len(self.lost)} acknowledged writes lost; "
                f"RTO: {self.rto_seconds:.1f} s "
                f"(the restore itself {self.restore_seconds:.1f} s); "
                + ("OK: every tweet, follow and timeline back" if not self.problems
                   else f"{len(self.problems)} problems"))


class Drill:
    def __init__(self, stack: Stack, *, synchronous: bool = True):
        self.stack, self.synchronous = stack, synchronous
        self.backups = stack.dir / "backups"
        self.env = {k: v for k, v in os.environ.items() if k != "EMBEDDED"} | {
            "DATABASE_URL": stack.database_url, "BACKUP_DIR": str(self.backups)}
        self.archiver: subprocess.Popen | None = None
        self.stack.cleanup.callback(self.stop_archiver)
        self.result = DrillResult()
        self.tokens: dict[int, str] = {}
        self.following: dict[int, set[int]] = {}
        self.tweets: dict[int, int] = {}  # acknowledged tweet -> author
        self.deleted: set[int] = set()
        self.unanswered: set[str] = set()  # the content of posts sent, never acknowledged

    # --- The archive ------------------------------------------------------------------

    def db(self) -> psycopg.Connection:
        return psycopg.connect(self.stack.database_url.replace("postgres://", "postgresql://"), autocommit=True,
                               connect_timeout=5)

    def start_archiver(self) -> None:
        """``python -m stack archive-wal``, the archive made a synchronous standby once it streams
        (unless the drill is asynchronous: then a commit does not wait for the archive)."""
        log = open(self.stack.dir / "archive-wal.log", "a")
        with log:
            self.archiver = subprocess.Popen([sys.executable, "-m", "stack", "archive-wal"], cwd=REPO, env=self.env,
                                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        with self.db() as db:
            self.wait(lambda: db.execute("SELECT 1 FROM pg_stat_replication WHERE application_name = %s AND "
                                         "state = 'streaming'", (ARCHIVE_NAME,)).fetchone(), "the archive streams",
                      details=lambda: self.stack.log("archive-wal")[-2000:])
            if not self.synchronous:
                return
            db.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{ARCHIVE_NAME}'")
            db.execute("SELECT pg_reload_conf()")
            self.wait(lambda: db.execute("SELECT 1 FROM pg_stat_replication WHERE application_name = %s AND "
                                         "sync_state = 'sync'", (ARCHIVE_NAME,)).fetchone(),
                      "the archive is a synchronous standby")

    def stop_archiver(self) -> None:
        if self.archiver and self.archiver.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.archiver.pid, signal.SIGINT)  # pg_receivewal's way to stop
            try:
                self.archiver.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.archiver.pid, signal.SIGKILL)
                self.archiver.wait()

    def wait(self, predicate, what: str, timeout: float = 60, details=lambda: "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(psycopg.Error, requests.RequestException):
                if predicate():
                    return
            if self.archiver and self.archiver.poll() is not None:
                raise RuntimeError(f"the archive stopped:\n{self.stack.log('archive-wal')[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"timed out after {timeout:.0f} s waiting until {what}\n{details()}")

    # --- Clients --------------------------------------------------------------------------

    def call(self, method: str, path: str, user: int | None = None, expect: int = 200, **kwargs) -> dict:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        r = requests.request(method, f"{self.stack.base}{path}", headers=headers, timeout=30, **kwargs)
        if r.status_code != expect:
            raise AssertionError(f"{method} {path} answered {r.status_code}, not {expect}: {r.text[:300]}")
        return r.json() if r.content else {}

    def register(self, n: int) -> None:
        for i in range(n):
            name, password = f"drill{i}", f"restore-drill-{secrets.token_hex(8)}"
            user = int(self.call("POST", "/v1/auth/register", expect=201,
                                 json={"username": name, "password": password})["user_id"])
            self.tokens[user] = self.call("POST", "/v1/auth/token", json={"username": name,
                                                                          "password": password})["access"]
            self.following[user] = set()

    def follow(self, user: int, followee: int) -> None:
        self.call("POST", f"/v1/users/{followee}/follow", user)
        self.following[user].add(followee)

    def unfollow(self, user: int, followee: int) -> None:
        self.call("DELETE", f"/v1/users/{followee}/follow", user)
        self.following[user].discard(followee)

    def post(self, user: int, content: str) -> int:
        tweet = int(self.call("POST", "/v1/tweets", user, expect=201, json={"content": content})["tweet_id"])
        self.tweets[tweet] = user
        return tweet

    def post_once(self, user: int, content: str) -> bool:
        """Post, and say whether it was taken; a ``503`` is False (try again), anything else but ``201`` fails."""
        r = requests.post(f"{self.stack.base}/v1/tweets", json={"content": content}, timeout=30,
                          headers={"Authorization": f"Bearer {self.tokens[user]}"})
        if r.status_code == 503:
            return False
        if r.status_code != 201:
            raise AssertionError(f"POST /v1/tweets answered {r.status_code}, not 201: {r.text[:300]}")
        self.tweets[int(r.json()["tweet_id"])] = user
        return True

    def delete(self, user: int, tweet: int) -> None:
        self.call("DELETE", f"/v1/tweets/{tweet}", user, expect=204)
        self.deleted.add(tweet)

    def scroll(self, user: int) -> list[int]:
        seen, cursor = [], None
        while True:
            body = self.call("GET", "/v1/timeline/home", user, params={"limit": 50, **({"cursor": cursor} if cursor
                                                                                        else {})})
            seen += [int(t["tweet_id"]) for t in body["data"]]
            if body["next_cursor"] is None:
                return seen
            cursor = body["next_cursor"]

    def converge(self) -> None:
        """Until no fan-out is pending, so that every timeline holds every tweet."""
        with self.db() as db:
            self.wait(lambda: not db.execute("SELECT count(*) FROM timelines_pendingfanout").fetchone()[0],
                      "no fan-out is pending", timeout=120)

    # --- The drill --------------------------------------------------------------------

    def run(self) -> DrillResult:
        self.start_archiver()
        self.register(USERS)
        users = sorted(self.tokens)
        for i, user in enumerate(users):
            for step in (1, 2):
                self.follow(user, users[(i + step) % len(users)])
        self.posts(users, "before the base backup")
        self.base_backup()
        # After the base backup: only the WAL archive has these.
        self.posts(users, "after the base backup")
        for i, user in enumerate(users):
            self.follow(user, users[(i + 3) % len(users)])
        self.unfollow(users[0], users[1])
        mine = [t for t, author in self.tweets.items() if author == users[2]]
        self.delete(users[2], min(mine))
        self.delete(users[2], max(mine))
        self.converge()
        seen = {user: self.scroll(user) for user in users}
        last = self.last_words(users[:3])
        self.restore()
        self.check(users, seen, last)
        return self.result

    def posts(self, users: list[int], when: str) -> None:
        for n in range(POSTS_EACH):
            for user in users:
                self.post(user, f"{when}: tweet {n} of {user}")

    def base_backup(self) -> None:
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "stack", "backup"], cwd=REPO, env=self.env,
                              capture_output=True, text=True)
        self.result.backup_seconds = time.monotonic() - started
        self.result.backup_output = done.stdout + done.stderr
        if done.returncode:
            raise RuntimeError(f"the base backup failed:\n{self.result.backup_output[-3000:]}")
        say(f"base backup taken in {self.result.backup_seconds:.1f} s")

    def last_words(self, users: list[int]) -> list[int]:
        """Posts in a stream from ``users``, PostgreSQL destroyed in the middle of it; the acknowledged ones.

        A post that got no answer (or an error) may still have committed: those are ``unanswered``,
        allowed but not required to come back."""
        acked: list[tuple[float, int]] = []
        stop = threading.Event()

        def keep_posting(user: int) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                content = f"the last word {n} of {user}"
                try:
                    r = requests.post(f"{self.stack.base}/v1/tweets", json={"content": content}, timeout=10,
                                      headers={"Authorization": f"Bearer {self.tokens[user]}"})
                except requests.RequestException:
                    self.unanswered.add(content)
                    continue
                if r.status_code == 201:
                    self.tweets[int(r.json()["tweet_id"])] = user
                    acked.append((time.monotonic(), int(r.json()["tweet_id"])))
                else:
                    self.unanswered.add(content)
                    time.sleep(0.05)

        threads = [threading.Thread(target=keep_posting, args=(user,), daemon=True) for user in users]
        for thread in threads:
            thread.start()
        self.wait(lambda: len(acked) >= 20, "the last posts are acknowledged")
        killed = self.destroy()
        stop.set()
        for thread in threads:
            thread.join()
        self.result.last_ack_ms = (max(t for t, _ in acked) - killed) * 1000
        self.result.last_words = len(acked)
        say(f"PostgreSQL killed under a stream of posts ({len(acked)} acknowledged, the last "
            f"{self.result.last_ack()}), its data directory deleted")
        return [tweet for _, tweet in acked]

    def destroy(self) -> float:
        """PostgreSQL killed (immediate shutdown: no checkpoint), its data directory deleted, the archive
        stopped; when the kill began."""
        killed = time.monotonic()
        result = self.stack.pg._run("pg_ctl", "-D", str(self.stack.pg.pgdata), "-m", "immediate", "stop")
        if result.returncode:
            raise RuntimeError(f"pg_ctl stop failed: {result.stdout}")
        shutil.rmtree(self.stack.pg.pgdata)
        self.stop_archiver()
        try:
            self.wait(lambda: "postgres" in self.failing(), "/readyz says PostgreSQL is failing", timeout=30)
        except RuntimeError as error:
            self.result.problems.append(str(error))
        return killed

    def failing(self) -> list[str]:
        """What ``/readyz`` names as not answering."""
        return requests.get(f"{self.stack.base}/readyz", timeout=30).json().get("failing", [])

    def restore(self) -> None:
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "stack", "restore", "--to", str(self.stack.pg.pgdata),
                               "--port", str(self.stack.pg_port)], cwd=REPO, env=self.env, capture_output=True,
                              text=True)
        self.result.restore_seconds = time.monotonic() - started
        if done.returncode:
            raise RuntimeError(f"the restore failed:\n{(done.stdout + done.stderr)[-3000:]}")
        self.start_archiver()
        # (The stack has no object storage, so /readyz names s3 as failing throughout.)
        self.wait(lambda: "postgres" not in self.failing(), "/readyz finds PostgreSQL", timeout=120)
        users = sorted(self.tokens)
        # As a client would: a 503 is tried again (each web process's database breaker may still be
        # cooling down from the outage), until the web takes posts again.
        self.wait(lambda: self.post_once(users[-1], "the first word after the restore"), "the web takes posts",
                  timeout=60)
        self.result.rto_seconds = time.monotonic() - started
        say(f"restored: the web takes posts again {self.result.rto_seconds:.1f} s after the restore began")

    def content(self, tweet: int, user: int) -> str:
        return self.call("GET", f"/v1/tweets/{tweet}", user)["content"]

    def read_tweet(self, tweet: int, author: int, patience: float = 30.0) -> requests.Response:
        """``GET /v1/tweets/{tweet}`` as its author, a ``503`` tried again as a client would: another web
        process than the one that took the first post may still be cooling its database breaker down."""
        deadline = time.monotonic() + patience
        while True:
            r = requests.get(f"{self.stack.base}/v1/tweets/{tweet}", timeout=30,
                             headers={"Authorization": f"Bearer {self.tokens[author]}"})
            if r.status_code != 503 or time.monotonic() >= deadline:
                return r
            time.sleep(0.2)

    def check(self, users: list[int], seen: dict[int, list[int]], last: list[int]) -> None:
        result = self.result
        result.acked_tweets = len(self.tweets)
        result.follows = sum(map(len, self.following.values()))
        for tweet, author in self.tweets.items():
            r = self.read_tweet(tweet, author)
            if r.status_code != (404 if tweet in self.deleted else 200):
                result.lost.append(f"tweet {tweet}{' (deleted)' if tweet in self.deleted else ''}: {r.status_code}")
        for user in users:
            page = self.call("GET", f"/v1/users/{user}/following", user, params={"limit": 100})
            got = {int(u["user_id"]) for u in page["data"]}
            if got != self.following[user]:
                result.lost.append(f"user {user} follows {sorted(got)}, not {sorted(self.following[user])}")
        # Every timeline rebuilt from PostgreSQL: the stack's own Redis emptied.
        self.stack.cache.client().flushall()
        newest = max(self.tweets)
        for user in users:
            visible = self.following[user] | {user}
            want = sorted(seen[user] + [t for t in last if self.tweets[t] in visible], reverse=True)
            got = [t for t in self.scroll(user) if t != newest]
            extra = set(got) - set(want)
            in_doubt = {t for t in extra if self.content(t, user) in self.unanswered}
            result.in_doubt |= in_doubt
            got = [t for t in got if t not in in_doubt]
            if got != want:
                result.problems.append(f"user {user}: the timeline after the restore has {len(got)} tweets, "
                                       f"{len(set(want) - set(got))} of {len(want)} missing, "
                                       f"{len(set(got) - set(want))} extra")
        followers = [u for u in users if users[-1] in self.following[u]]
        self.converge()
        for user in followers:
            if newest not in self.scroll(user)[:1]:
                result.problems.append(f"user {user} does not see the post made after the restore")
        result.problems += result.lost


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.drill", description=__doc__.split("\n\n")[0])
    parser.add_argument("--asynchronous", action="store_true",
                        help="commits do not wait for the archive (synchronous_standby_names left empty): "
                             "measures what the last posts before the kill may lose, without calling it a failure")
    args = parser.parse_args()
    with Stack(web_workers=2, replica=False, volume=False) as stack:  # the archive is the standby
        result = Drill(stack, synchronous=not args.asynchronous).run()
    say(f"{'asynchronous' if args.asynchronous else 'synchronous'} archive: {result.summary()}")
    problems = [p for p in result.problems if not (args.asynchronous and p in result.lost)]
    for problem in result.problems:
        say(f"{'PROBLEM' if problem in problems else 'lost'} {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
