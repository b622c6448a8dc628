"""The backing services of a measured stack of its own (the benchmark's, the soak's): a
database recreated empty on the configured or embedded PostgreSQL, a Valkey server and a
local S3 endpoint on spare ports, migrated, with the media bucket ready."""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from stack import common, s3, services, valkey

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Backing:
    database_url: str
    redis_port: int
    s3_endpoint: str

    def env(self) -> dict[str, str]:
        """The environment a stack on these services runs with (the app's Redis in db 0, the broker's in db 1)."""
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": f"redis://{HOST}:{self.redis_port}/0",
            "CELERY_BROKER_URL": f"redis://{HOST}:{self.redis_port}/1",
            "AWS_S3_ENDPOINT_URL": self.s3_endpoint,
            "WEB_HOST": HOST,
            "PYTHONUNBUFFERED": "1",
        }


def start(*, database: str, data_dir: Path, cleanup: contextlib.ExitStack, s3_port: int,
          keep: bool = False) -> Backing:
    """Recreate ``database`` empty (with ``keep``, create it only if it is missing: the caller reuses what it
    holds), start Valkey and S3 (stopped by ``cleanup``)."""
    env = dict(os.environ)
    services.resolve_postgres(env, data_dir, cleanup, forced=env.get("EMBEDDED") == "1")
    database_url = urlunsplit(urlsplit(env["DATABASE_URL"])._replace(path=f"/{database}"))
    recreate(database_url, keep=keep)
    redis_port = valkey.start_valkey(data_dir, cleanup)
    s3_endpoint = s3.start_s3(common.pick_port(s3_port), data_dir / "s3" / "s3.log", cleanup)
    return Backing(database_url=database_url, redis_port=redis_port, s3_endpoint=s3_endpoint)


def recreate(database_url: str, *, keep: bool = False) -> None:
    """Drop and create the database of ``database_url`` (with ``keep``, only create it if it is missing)."""
    database = urlsplit(database_url).path.lstrip("/")
    with services.maintenance_connection(database_url) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not (keep and exists):
            conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {database}")


def manage(env: dict[str, str], *args: str) -> None:
    """``manage.py *args`` with ``env``; a failure stops the run. Without the database's time bounds:
    seeding and migrating run statements far longer than a request's (a COPY of a million tweets)."""
    unbounded = {"DATABASE_STATEMENT_TIMEOUT": "0", "DATABASE_QUERY_TIMEOUT": "0"}
    subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env | unbounded, check=True)


def prepare(env: dict[str, str]) -> None:
    """Migrate the database and create the media bucket."""
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "media_bucket")
