"""A real streaming replica: lag-tolerant reads go to it, and nothing a user just wrote is missed.

The fixture builds a primary (``initdb``, ``wal_level=replica``) and a replica
(``pg_basebackup -R``) on spare loopback ports, migrates the primary and stops
both afterwards. The scenario runs in a subprocess configured only through the
environment (``DATABASE_URL``, ``DATABASE_REPLICA_URL``), as the service would
be; it pauses the replica's replay (``pg_wal_replay_pause()``) so rows exist
on the primary only, and at the end stops the replica.
"""
import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers import free_port, tool_missing

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _bin(tool: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}")) or [shutil.which(tool)]
    if not found or not found[-1]:
        tool_missing(f"no PostgreSQL server binaries ({tool}; Debian: apt-get install postgresql)")
    return found[-1]


class Cluster:
    def __init__(self, base: Path):
        self.base = base
        self.user = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            try:
                self.user = pwd.getpwnam("postgres").pw_name
            except KeyError:
                tool_missing("running as root without a postgres account to run PostgreSQL as")

    def run(self, tool: str, *args: str) -> str:
        result = subprocess.run([_bin(tool), *args], user=self.user, capture_output=True, text=True, timeout=120,
                                cwd=self.base)
        assert result.returncode == 0, f"{tool} {args}: {result.stdout}{result.stderr}"
        return result.stdout

    def start(self, data: Path, port: int) -> int:
        """Start the server on ``port``, or on another free one if that was taken meanwhile (a port
        found free is not reserved: a client's connection may take it as its own end); the port."""
        for attempt in range(3):
            try:
                self.run("pg_ctl", "-D", str(data), "-l", str(data / "log"), "-w", "-t", "60", "-o",
                         f"-p {port} -k {self.base}", "start")
                return port
            except AssertionError as error:
                log = (data / "log").read_text(errors="replace")[-2000:] if (data / "log").exists() else ""
                if attempt == 2 or "already in use" not in log:
                    raise AssertionError(f"{error}\nserver log:\n{log}") from None
                port = free_port()
        raise AssertionError("unreachable")

    def stop(self, data: Path) -> None:
        with contextlib.suppress(AssertionError):
            self.run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")


@pytest.fixture
def primary_and_replica():
    base = Path(tempfile.mkdtemp(prefix="replica-test-"))
    cluster = Cluster(base)
    if cluster.user:
        shutil.chown(base, cluster.user)
    primary, replica = base / "primary", base / "replica"
    ports = free_port(), free_port()
    started = []
    try:
        cluster.run("initdb", "-D", str(primary), "--auth=trust", "-U", "postgres", "--no-sync")
        with open(primary / "postgresql.conf", "a") as conf:
            conf.write("listen_addresses = '127.0.0.1'\nwal_level = replica\nmax_wal_senders = 4\n"
                       "fsync = off\nfull_page_writes = off\n")
        ports = cluster.start(primary, ports[0]), ports[1]
        started.append(primary)
        cluster.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(ports[0]), "-U", "postgres", "-D", str(replica),
                    "-R", "-X", "stream", "--no-sync")
        ports = ports[0], cluster.start(replica, ports[1])
        started.append(replica)
        cluster.run("createdb", "-h", "127.0.0.1", "-p", str(ports[0]), "-U", "postgres", "timeline")
        env = _env(ports)
        migrate = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=300)
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        yield cluster, primary, replica, ports
    finally:
        for data in reversed(started):
            cluster.stop(data)
        shutil.rmtree(base, ignore_errors=True)


def _env(ports: tuple[int, int]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))}
    return env | {
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{ports[0]}/timeline",
        "DATABASE_REPLICA_URL": f"postgres://postgres@127.0.0.1:{ports[1]}/timeline",
        "DATABASE_REPLICA_MAX_LAG_SECONDS": "60",
        "REDIS_KEY_PREFIX": f"replica-test-{uuid.uuid4().hex[:8]}:",
    }


def _scenario(primary_and_replica, name: str) -> None:
    cluster, primary, replica, ports = primary_and_replica
    env = _env(ports) | {"PRIMARY_DATA_DIR": str(primary), "REPLICA_DATA_DIR": str(replica),
                         "PG_CTL": _bin("pg_ctl"), "PG_USER": cluster.user or ""}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "tests.timelines.replica_scenario", name], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    print(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    assert "scenario passed" in result.stdout
    print(f"took {time.monotonic() - started:.1f} s")


def test_reads_use_the_replica_without_missing_a_write(primary_and_replica):
    _scenario(primary_and_replica, "lag")


def test_with_the_primary_gone_reads_go_to_the_replica_promoted_or_not_and_writes_fail(primary_and_replica):
    _scenario(primary_and_replica, "primary_gone")
