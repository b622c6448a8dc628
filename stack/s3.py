"""The local S3 endpoint: moto's server mode (``moto[server]``), a real HTTP S3 API on
loopback for a machine without MinIO or a cloud bucket. It keeps objects in
memory, so they last as long as the stack. It does not enforce presigned POST
policies; the service checks every upload with a HEAD before a tweet takes it."""
from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from .common import StackError, answers, say, spawn, stop_processes, tail

DEFAULT_S3_ENDPOINT = "http://127.0.0.1:9000"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def start_s3(port: int, log: Path, cleanup: contextlib.ExitStack) -> str:
    """moto's S3 server on 127.0.0.1:``port`` as our child; its endpoint URL once it answers."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = spawn([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                     stdout=out, stderr=subprocess.STDOUT)
    cleanup.callback(stop_processes, {"local S3": proc})
    deadline = time.monotonic() + 30
    while not answers("127.0.0.1", port, timeout=0.5):
        if proc.poll() is not None:
            sys.stderr.write(tail(log))
            raise StackError(f"the local S3 endpoint exited with code {proc.returncode} (log in {log}).")
        if time.monotonic() > deadline:
            raise StackError(f"the local S3 endpoint did not answer on 127.0.0.1:{port} (log in {log}).")
        time.sleep(0.1)
    return f"http://127.0.0.1:{port}"


def resolve_s3(env: dict[str, str], data_dir: Path, cleanup: contextlib.ExitStack) -> None:
    """Point AWS_S3_ENDPOINT_URL at an S3 API that answers: the configured one, or a local
    one started on the endpoint's loopback port when nothing answers there."""
    endpoint = env.get("AWS_S3_ENDPOINT_URL", DEFAULT_S3_ENDPOINT)
    if not endpoint:
        say("S3: AWS (AWS_S3_ENDPOINT_URL empty)")
        return
    parts = urlsplit(endpoint)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise StackError(f"AWS_S3_ENDPOINT_URL={endpoint} has an invalid port.") from None
    host = parts.hostname or ""
    if answers(host, port, timeout=0.5):
        env["AWS_S3_ENDPOINT_URL"] = endpoint
        say(f"S3: {endpoint}")
        return
    if host not in LOOPBACK or parts.scheme != "http":
        raise StackError(f"S3 at {host}:{port} is not reachable (AWS_S3_ENDPOINT_URL={endpoint}). "
                         "Start it, or unset AWS_S3_ENDPOINT_URL to use a local one.")
    env["AWS_S3_ENDPOINT_URL"] = start_s3(port, data_dir / "s3" / "s3.log", cleanup)
    say(f"S3: local endpoint (moto) at {env['AWS_S3_ENDPOINT_URL']} (nothing answered there; objects in memory)")
