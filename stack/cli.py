"""``python -m stack run|test``: the program behind ``make run`` and ``make test``.

It resolves the backing services (``services``: configured ones checked,
embedded PostgreSQL and Valkey started where none is configured, data under
``$STACK_DATA_DIR``, default ``.data/``; for ``run``, a local S3 endpoint where
none answers, ``s3``), creates the database if it is missing, and then either
migrates, prepares the media bucket and supervises the Procfile's processes in
the foreground (``run``) or hands its remaining arguments to pytest (``test``,
whose suite starts an S3 endpoint of its own).
The embedded servers are stopped again however it ends, short of SIGKILL.

``backup`` and ``archive-wal`` (``make backup``, ``make archive-wal``; the module ``backup``) start
nothing: they act on the server DATABASE_URL names, or on the embedded one ``make run`` started.
``restore`` starts a server of its own on the restored data directory.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from core.brokers import is_amqp

from . import backup
from .common import REPO, Interrupted, StackError, ignore, on_signals, raise_interrupted, say, spawn, warn
from .redis_cluster import start_redis_cluster
from .services import check_broker, database_url, manage, prepare, redact, resolve_services
from .supervisor import run_stack


def local_secret_key(data_dir: Path) -> str:
    """A random SECRET_KEY kept in the data directory, for a stack started without one."""
    path = data_dir / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
        say(f"SECRET_KEY not set: generated one in {path}")
    return path.read_text().strip()


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


# The broker of a cluster test run (TEST_CLUSTER_BROKER_URL to change it).
TEST_CLUSTER_BROKER = os.environ.get("TEST_CLUSTER_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")


def use_test_cluster(env: dict[str, str], data_dir: Path, cleanup: contextlib.ExitStack) -> None:
    """``TEST_REDIS_CLUSTER=1``: run the suite against a 3-master Redis Cluster of our own,
    with RabbitMQ as the broker (Celery cannot use a cluster)."""
    directory = Path(tempfile.mkdtemp(prefix="redis-cluster-", dir=data_dir))
    cleanup.callback(shutil.rmtree, directory, ignore_errors=True)
    nodes = start_redis_cluster(directory, cleanup)
    env["REDIS_CLUSTER"] = "1"
    env["REDIS_URL"] = nodes.url
    broker = env.get("CELERY_BROKER_URL", "")
    if not is_amqp(broker):
        env["CELERY_BROKER_URL"] = broker = TEST_CLUSTER_BROKER
    check_broker(broker)
    say(f"Redis Cluster: {', '.join(f'127.0.0.1:{p}' for p in nodes.ports)}; Celery broker: {redact(broker)}")


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m stack",
        description="Run the stack (run) or the test suite (test), with embedded PostgreSQL "
                    "and Valkey where none are configured.",
        epilog="Environment: DATABASE_URL, REDIS_URL, CELERY_BROKER_URL, AWS_S3_ENDPOINT_URL, EMBEDDED=1, "
               "STACK_DATA_DIR, WEB_HOST, PORT, WEB_CONCURRENCY, WEB_THREADS, CELERY_CONCURRENCY, "
               "DJANGO_SETTINGS_MODULE. "
               "The processes and their command lines are the Procfile's.")
    commands = parser.add_subparsers(dest="command", required=True,
                                     metavar="{run,test,backup,archive-wal,restore}")
    commands.add_parser("run", help="migrate, then run the Procfile's web, stream, worker and beat in the foreground")
    commands.add_parser("test", help="run pytest; every later argument goes to pytest as is")
    commands.add_parser("backup", help="a base backup of DATABASE_URL's server into $BACKUP_DIR/base "
                                       "(default .data/backups; docs/operations.md)")
    commands.add_parser("archive-wal", help="stream the server's WAL into $BACKUP_DIR/wal until stopped")
    restore = commands.add_parser("restore", help="a new data directory from $BACKUP_DIR: the latest base backup "
                                                  "and the archived WAL after it, then start PostgreSQL there")
    restore.add_argument("--to", type=Path, required=True, metavar="PGDATA",
                         help="the new data directory (must not exist, or be empty)")
    restore.add_argument("--port", type=int, help="the port to start it on (default 54329, or a free one)")
    restore.add_argument("--base", help="the base backup to start from (its directory name; default the latest)")
    restore.add_argument("--target-time", help="replay the WAL only up to this time (e.g. '2026-12-07 16:30:00+00')")
    # pytest's options are not ours to parse (argparse would trip over them),
    # so everything after "test" is passed through untouched.
    if argv[:1] == ["test"]:
        rest = argv[1:]
        return argparse.Namespace(command="test"), rest[1:] if rest[:1] == ["--"] else rest
    return parser.parse_args(argv), []


def backups(args: argparse.Namespace, env: dict[str, str], data_dir: Path) -> int:
    """``backup``, ``archive-wal`` and ``restore`` (stack/backup.py), on ``$BACKUP_DIR``."""
    backup_dir = Path(env.get("BACKUP_DIR") or data_dir / "backups").expanduser().resolve()
    if args.command == "restore":
        backup.restore(backup_dir, args.to, port=args.port, base_name=args.base, target_time=args.target_time)
        return 0
    url = database_url(env, data_dir)
    if args.command == "backup":
        backup.base_backup(url, backup_dir)
    else:
        backup.archive_wal(url, backup_dir)
    return 0


def main(argv: list[str] | None = None) -> int:
    args, pytest_args = parse_args(sys.argv[1:] if argv is None else argv)
    command = args.command
    sys.stdout.reconfigure(line_buffering=True, errors="replace")
    sys.stderr.reconfigure(errors="replace")
    env = dict(os.environ)
    if command == "run":
        env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
    data_dir = Path(env.get("STACK_DATA_DIR") or REPO / ".data").expanduser().resolve()

    cleanup = contextlib.ExitStack()
    on_signals(raise_interrupted)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        if command in ("backup", "archive-wal", "restore"):
            return backups(args, env, data_dir)
        if command == "run" and not env.get("SECRET_KEY"):
            env["SECRET_KEY"] = local_secret_key(data_dir)
        resolve_services(env, data_dir, cleanup, s3=command == "run")
        prepare(env, migrate=command == "run")
        if command == "run":
            manage(env, "media_bucket")
            return run_stack(env, data_dir, cleanup)
        if env.get("TEST_REDIS_CLUSTER", "").lower() in ("1", "true", "yes"):
            use_test_cluster(env, data_dir, cleanup)
        return run_tests(env, pytest_args)
    except StackError as exc:
        warn(str(exc))
        return exc.code
    except Interrupted as exc:
        say(f"{exc} received")
        return 128 + exc.signum
    finally:
        # A second Ctrl-C must not cut the shutdown short and leave servers behind.
        on_signals(ignore)
        cleanup.close()
