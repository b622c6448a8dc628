"""``make run``'s foreground stack: the Procfile's processes, supervised.

A worker or beat that dies is started again, as a process manager would; the
web server's exit, or a signal, stops them all. They share one directory of
Prometheus samples (``PROMETHEUS_MULTIPROC_DIR``), emptied when the stack starts.
"""
from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from pathlib import Path

from . import procfile
from .common import on_signals, say, signal_group, stop_processes, warn

# Processes restarted when they die; more than MAX_RESTARTS in RESTART_WINDOW seconds stops the stack.
RESTARTABLE = ("stream", "worker", "beat")
MAX_RESTARTS, RESTART_WINDOW = 5, 60.0


def run_stack(env: dict[str, str], data_dir: Path, cleanup: contextlib.ExitStack) -> int:
    """Supervise the stack until a signal (exit 0) or until the web server exits (exit non-zero).
    A stream process, worker or beat that dies is started again, unless it keeps dying."""
    commands = procfile.load()
    child_env = procfile.process_env(env, data_dir)
    if not child_env.get("PROMETHEUS_MULTIPROC_DIR"):  # one set by the operator is theirs, left as it is
        child_env["PROMETHEUS_MULTIPROC_DIR"] = str(fresh_metrics_dir(data_dir))
    children: dict[str, subprocess.Popen] = {}
    cleanup.callback(stop_processes, children)  # runs before the embedded servers stop
    for name, command in commands.items():
        children[name] = procfile.start(command, child_env)
    say(f"web client and APIs: http://{env.get('WEB_HOST') or '127.0.0.1'}:{env.get('PORT') or 8000}/ "
        f"(streams on port {child_env.get('STREAM_PORT') or 8001}; worker and beat running; Ctrl-C stops all)")

    received: list[int] = []
    on_signals(lambda signum, frame: received.append(signum))
    restarts: dict[str, list[float]] = {name: [] for name in RESTARTABLE}
    while not received:
        for name, proc in children.items():
            if proc.poll() is None:
                continue
            recent = [t for t in restarts.get(name, []) if t > time.monotonic() - RESTART_WINDOW]
            if name not in RESTARTABLE or len(recent) >= MAX_RESTARTS:
                warn(f"{name} exited with code {proc.returncode}; stopping the rest")
                return proc.returncode if proc.returncode > 0 else 1
            # A worker or beat that died (killed, say) is started again, as a
            # process manager would; its unfinished work is redelivered or
            # picked up by the reconciler.
            warn(f"{name} exited with code {proc.returncode}; starting it again")
            signal_group(proc, signal.SIGKILL)  # what it forked, if anything is left
            proc.wait()
            restarts[name] = [*recent, time.monotonic()]
            children[name] = procfile.start(commands[name], child_env)
        time.sleep(0.2)
    say(f"{signal.Signals(received[0]).name} received")
    return 0


def fresh_metrics_dir(data_dir: Path) -> Path:
    """``<data_dir>/metrics``, emptied: where every process of the stack writes its
    Prometheus samples, so that ``/metrics`` on any web worker merges them all.
    The last run's files would otherwise be merged into this one's series."""
    path = data_dir / "metrics"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
