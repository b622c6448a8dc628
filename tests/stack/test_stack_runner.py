"""The stack runner (``python -m stack``): how it resolves services, what it says when
one is missing, and (slow) that the embedded servers really start, serve and stop
without leftovers."""
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
import redis

from stack import cli, common, s3, services
from tests.helpers import free_port

REPO = Path(__file__).resolve().parents[2]

SERVICE_VARS = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "EMBEDDED", "STACK_DATA_DIR")


def clean_env(**overrides) -> dict:
    """The environment without the services the outer ``make test`` resolved."""
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARS}
    env.update(overrides)
    return env


def run_script(*args, env, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stack", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("url, shown", [
    ("postgres://u:secret@h:1/db", "postgres://u@h:1/db"),
    ("redis://:secret@h:6379/0", "redis://h:6379/0"),
    ("amqp://guest:guest@h:5672//", "amqp://guest@h:5672//"),
    ("redis://h:6379/0", "redis://h:6379/0"),
])
def test_redact_drops_passwords(url, shown):
    assert services.redact(url) == shown


@pytest.mark.parametrize("url, address", [
    ("postgres://u@db.example:6543/x", ("db.example", 6543)),
    ("postgres://u@127.0.0.1/x", ("127.0.0.1", 5432)),
    ("postgres://%2Fvar%2Frun%2Fpostgresql/x", None),
    ("postgres:///x?host=/tmp", None),
])
def test_tcp_address(url, address):
    assert services.tcp_address(url, 5432) == address


def test_embedded_only_for_services_that_are_neither_set_nor_answering(monkeypatch):
    monkeypatch.setattr(services, "answers", lambda host, port, timeout=1.0: port == 6379)
    env = {}
    assert services.embedded_reason(env, "DATABASE_URL", 5432, forced=False) is not None
    assert services.embedded_reason(env, "REDIS_URL", 6379, forced=False) is None
    assert services.embedded_reason({"DATABASE_URL": "postgres://h/x"}, "DATABASE_URL", 5432, forced=False) is None
    assert services.embedded_reason({"DATABASE_URL": "postgres://h/x"}, "DATABASE_URL", 5432,
                                    forced=True) == "EMBEDDED=1"


def test_pytest_arguments_pass_through_untouched():
    def parsed(argv):
        args, rest = cli.parse_args(argv)
        return args.command, rest

    assert parsed(["test", "--", "-k", "x", "--help"]) == ("test", ["-k", "x", "--help"])
    assert parsed(["test", "-x"]) == ("test", ["-x"])
    assert parsed(["run"]) == ("run", [])
    args, _ = cli.parse_args(["restore", "--to", "/tmp/pgdata", "--target-time", "2026-12-07 16:30:00+00"])
    assert (args.command, args.to, args.target_time) == ("restore", Path("/tmp/pgdata"), "2026-12-07 16:30:00+00")


def test_unreachable_configured_database_is_one_sentence_and_exit_2():
    port = free_port()
    result = run_script("test", "--", "--version",
                        env=clean_env(DATABASE_URL=f"postgres://postgres:pw@127.0.0.1:{port}/x"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"✗ PostgreSQL at 127.0.0.1:{port} is not reachable "
        f"(DATABASE_URL=postgres://postgres@127.0.0.1:{port}/x). "
        "Start it, unset DATABASE_URL to use an embedded server, or set EMBEDDED=1."
    ]
    assert "Traceback" not in result.stdout + result.stderr


PROBE = '''
import os, psycopg, redis

def test_services():
    url = os.environ["DATABASE_URL"].replace("postgres://", "postgresql://")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("timeline",)
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute("CREATE DATABASE probe")
        conn.execute("DROP DATABASE probe")
    r = redis.Redis.from_url(os.environ["REDIS_URL"])
    assert r.ping()
    assert r.eval("return redis.call('INCR', KEYS[1])", 1, "n") == 1
    assert os.environ["CELERY_BROKER_URL"] == os.environ["REDIS_URL"]
'''


@pytest.mark.slow
def test_embedded_servers_serve_and_leave_nothing_behind():
    # Short and outside pytest's 0700 tmp dirs: as root PostgreSQL runs as
    # another user, who must reach the data directory.
    data_dir = Path(tempfile.mkdtemp(prefix="stack-"))
    probe_dir = Path(tempfile.mkdtemp(prefix="stack-probe-"))
    try:
        (probe_dir / "pytest.ini").write_text("[pytest]\n")
        (probe_dir / "test_probe.py").write_text(textwrap.dedent(PROBE))
        result = run_script("test", str(probe_dir), "-q", "-p", "no:django", "-p", "no:cacheprovider",
                            env=clean_env(EMBEDDED="1", STACK_DATA_DIR=str(data_dir)))
        assert result.returncode == 0, result.stdout + result.stderr
        ports = [int(p) for p in re.findall(r"embedded (?:Valkey )?at 127\.0\.0\.1:(\d+)", result.stdout)]
        assert len(ports) == 2, result.stdout
        assert "stopping embedded PostgreSQL" in result.stdout
        for port in ports:
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
        assert not (data_dir / "postgres" / "postmaster.pid").exists()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.rmtree(probe_dir, ignore_errors=True)


def test_a_local_s3_endpoint_is_started_where_nothing_answers_and_stopped_after(tmp_path):
    import boto3

    endpoint = f"http://127.0.0.1:{free_port()}"
    env = {"AWS_S3_ENDPOINT_URL": endpoint}
    with contextlib.ExitStack() as cleanup:
        s3.resolve_s3(env, tmp_path, cleanup)
        assert env["AWS_S3_ENDPOINT_URL"] == endpoint
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id="k", aws_secret_access_key="s")
        client.create_bucket(Bucket="runner-check")
        assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["runner-check"]
        s3.resolve_s3(dict(env), tmp_path, cleanup)  # it answers now: used as is, nothing started
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(endpoint.rsplit(":", 1)[1])), timeout=1).close()


def test_an_unreachable_remote_s3_endpoint_is_one_sentence(tmp_path):
    with pytest.raises(common.StackError, match=r"S3 at s3\.invalid:9000 is not reachable"):
        s3.resolve_s3({"AWS_S3_ENDPOINT_URL": "http://s3.invalid:9000"}, tmp_path, contextlib.ExitStack())


def test_waiting_for_a_server_that_exits_names_it_and_shows_its_log(tmp_path):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("no redis-server on the PATH")
    log = tmp_path / "redis.log"
    with socket.socket() as taken:  # the port is taken: the server logs why and exits
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = common.spawn([server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                             "--logfile", str(log)], stdout=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2)
        with pytest.raises(common.StackError, match=r"^test server exited with code 1") as refused:
            common.wait_for_ping("test server", proc, client, log)
    assert "Address already in use" in str(refused.value)


def test_waiting_for_a_server_returns_once_it_answers(tmp_path):
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("no redis-server on the PATH")
    port = free_port()
    proc = common.spawn([server, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                         "--logfile", str(tmp_path / "redis.log")], stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2)
        common.wait_for_ping("test server", proc, client, tmp_path / "redis.log")
        assert client.ping()
    finally:
        common.stop_processes({"test server": proc})
