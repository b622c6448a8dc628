"""Where PostgreSQL, Redis and the Celery broker are, and the database made ready.

A service that is configured (its variable is set, or its default local port
answers) is checked and used as is; if it is unreachable, the runner says so in
one sentence (exit status 2). A service that is not configured (or every one,
with ``EMBEDDED=1``) gets an embedded real server instead (``postgres``,
``valkey``). Then the database is created if it is missing, and migrated.
"""
from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import psycopg
import redis
from psycopg import errors as pg_errors
from psycopg import sql

from core.brokers import broker_address, first_url, is_amqp, is_redis

from .common import REPO, StackError, answers, first_line, say
from .postgres import EmbeddedPostgres
from .s3 import resolve_s3
from .valkey import start_valkey

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/timeline"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


# --- URLs ----------------------------------------------------------------------------

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


def libpq_url(url: str, dbname: str | None = None) -> str:
    """DATABASE_URL as libpq takes it: django-environ's scheme aliases become ``postgresql``."""
    parts = urlsplit(url)._replace(scheme="postgresql")
    if dbname is not None:
        parts = parts._replace(path=f"/{dbname}")
    return urlunsplit(parts)


def database_name(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


# --- Resolving the services -----------------------------------------------------------------

def resolve_services(env: dict[str, str], data_dir: Path, cleanup: contextlib.ExitStack, *, s3: bool) -> None:
    """Point DATABASE_URL, REDIS_URL and CELERY_BROKER_URL in ``env`` at servers that answer,
    and with ``s3`` AWS_S3_ENDPOINT_URL too (the test suite starts its own)."""
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
    if s3:
        resolve_s3(env, data_dir, cleanup)


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


def database_url(env: Mapping[str, str], data_dir: Path) -> str:
    """The database ``make run`` uses, without starting anything: DATABASE_URL's, or the running
    embedded server's where ``make run`` would start one."""
    configured = env.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    reason = embedded_reason(env, "DATABASE_URL", 5432, env.get("EMBEDDED", "").lower() in ("1", "true", "yes"))
    if reason is None:
        return configured
    pid = data_dir / "postgres" / "postmaster.pid"
    if not pid.exists():
        raise StackError(f"{reason}, and no embedded PostgreSQL runs in {pid.parent}: start the stack "
                         f"(`make run`) or set DATABASE_URL.")
    # postmaster.pid: pid, data dir, start time, port, ...
    port = int(pid.read_text().splitlines()[3])
    return f"postgres://postgres@127.0.0.1:{port}/{database_name(configured) or 'timeline'}"


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
    url = first_url(url)
    if is_redis(url):
        check_redis(url, {"CELERY_BROKER_URL": url}, "CELERY_BROKER_URL", "The Celery broker")
    elif is_amqp(url):
        try:
            address = broker_address(url)
        except ValueError:
            raise StackError(f"{redact(url)} has an invalid port.") from None
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
            return False  # a concurrent runner (or anyone) created it first
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
        manage(env, "migrate", "--noinput")


def manage(env: dict[str, str], *args: str) -> None:
    """Run ``manage.py *args`` in the stack's environment; a failure stops the runner."""
    code = subprocess.call([sys.executable, "manage.py", *args], cwd=REPO, env=env)
    if code:
        raise StackError(f"manage.py {args[0]} failed with exit code {code} (output above).", code=1)

