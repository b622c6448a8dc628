"""Real Celery processes for the tests that kill or count them (started as ``make run`` starts
them: production settings, configured only through the environment, on the test database)."""
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from config.celery_app import app
from core.redis import connection as redis_connection
from tests.helpers import wait_for
from timelines import store

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The pytest-django test database, as DATABASE_URL for a subprocess."""
    db = connection.settings_dict
    user = quote(db["USER"] or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    host = quote(db["HOST"] or "", safe="")  # a socket directory is percent-encoded
    port = f":{db['PORT']}" if db["PORT"] else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{host}{port}/{quote(db['NAME'], safe='')}"


def worker_env(prefix: str) -> dict[str, str]:
    """A Celery process's environment: this test's database, Redis key prefix (also the
    broker's ``global_keyprefix``) and queue, and a reconciler shortened to 1 s."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))}
    return env | {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": app.conf.broker_url,
        "REDIS_KEY_PREFIX": prefix,  # timeline keys and the broker's global_keyprefix
        "CELERY_QUEUE": app.conf.task_default_queue,
        "FANOUT_RECONCILE_AFTER_SECONDS": "1",
        "FANOUT_RECONCILE_EVERY_SECONDS": "1",
        "LOG_LEVEL": "INFO",
    }


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc (none known without it)."""
    members = []
    proc = Path("/proc")
    for entry in proc.iterdir() if proc.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


class Processes:
    """Celery subprocesses, each in a session (and process group) of its own."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env, self.logs = env, logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str, app: str = "config.celery_app") -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")
        try:
            proc = subprocess.Popen([sys.executable, "-m", "celery", "-A", app, *args],
                                    cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        self.procs[name] = proc
        return proc

    def start_worker(self, name: str, pool: str = "prefork") -> subprocess.Popen:
        """A worker with the Procfile's default pool unless told otherwise."""
        proc = self.start(name, "worker", f"--pool={pool}", "--concurrency=2", "--without-heartbeat",
                          "--without-gossip", "--without-mingle", "-Q", self.env["CELERY_QUEUE"],
                          "-n", f"{name}-{uuid.uuid4().hex[:6]}@%h", "--loglevel=INFO")
        wait_for_processes(lambda: " ready." in self.log(name), 60, f"{name} to be ready", self, name)
        return proc

    def start_beat(self, name: str) -> subprocess.Popen:
        """The Procfile's beat: its own app, which sends the schedule's tasks by name."""
        return self.start(name, "beat", "--loglevel=INFO", "--schedule", str(self.logs / f"{name}-schedule"),
                          app="config.beat")

    def kill(self, name: str, signum: int = signal.SIGKILL, timeout: float = 10) -> None:
        """Signal the whole group (a worker and its pool children) and wait until none is left."""
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
        deadline = time.monotonic() + timeout
        while group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if proc.poll() is None or group_members(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert not group_members(proc.pid), f"{name} left processes behind"

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def check_running(self, *names: str) -> None:
        for name in names:
            assert self.procs[name].poll() is None, f"{name} exited:\n{self.log(name)[-4000:]}"

    def stop_all(self) -> None:
        for name in self.procs:
            self.kill(name)


def wait_for_processes(predicate: Callable[[], object], timeout: float, what: str, procs: Processes, *running: str):
    """Wait for ``predicate`` while the ``running`` processes stay up; on a timeout, show every log."""
    return wait_for(predicate, timeout, what=what, check=lambda: procs.check_running(*running),
                    details=lambda: "\n".join(f"--- {name}\n{procs.log(name)[-3000:]}" for name in procs.procs))


def timelines(user_ids: list[int]) -> dict[int, list[bytes]]:
    pipe = redis_connection().pipeline(transaction=False)
    for uid in user_ids:
        pipe.lrange(store.timeline_key(uid), 0, -1)
    return dict(zip(user_ids, pipe.execute(), strict=True))
