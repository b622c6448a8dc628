"""What every part of the runner shares: its messages and errors, signal handling,
child processes (each in a session of its own, dying with us) and local ports."""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import redis

REPO = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 10.0


class StackError(Exception):
    """Something the user can fix: printed as one line, without a traceback."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


class Interrupted(Exception):
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def say(message: str) -> None:
    print(f"→ {message}", flush=True)


def warn(message: str) -> None:
    print(f"✗ {message}", file=sys.stderr, flush=True)


def first_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
    except OSError:
        return ""


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))  # honours container CPU limits
    except AttributeError:
        return os.cpu_count() or 1


# --- Signals -------------------------------------------------------------------

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def on_signals(handler: Callable) -> None:
    # Always a Python function, never SIG_IGN: an ignored signal stays ignored
    # in every child we exec, and pytest or gunicorn would then shrug off Ctrl-C.
    for signum in HANDLED_SIGNALS:
        signal.signal(signum, handler)


def raise_interrupted(signum, frame):
    raise Interrupted(signum)


def ignore(signum, frame):
    pass


# --- Child processes -------------------------------------------------------------

def _parent_death_signal() -> Callable[[], None] | None:
    """Make children die with us even if we are SIGKILLed and no cleanup runs (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGTERM)


_DIE_WITH_PARENT = _parent_death_signal()


def spawn(argv: list[str], env: Mapping[str, str] | None = None, *, foreground: bool = False,
          **kwargs) -> subprocess.Popen:
    """Start a child; background children get a session (and process group) of their own.

    Their own session keeps the terminal's Ctrl-C away from them, so that the
    runner decides the order of shutdown, and lets us signal a child together
    with everything it forked (gunicorn and Celery workers). A foreground child
    (pytest) shares our terminal so that ``--pdb`` and Ctrl-C work as usual.
    """
    if not foreground:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen(argv, env=env, cwd=REPO, start_new_session=not foreground,
                            preexec_fn=_DIE_WITH_PARENT, **kwargs)


def stop_processes(procs: Mapping[str, subprocess.Popen], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM each child's process group, wait up to ``timeout`` in total, then SIGKILL what is left."""
    running = {name: p for name, p in procs.items() if p.poll() is None}
    if running:
        say(f"stopping {', '.join(running)}")
    for proc in running.values():
        signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in running.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.0, deadline - time.monotonic()))
    # Also for children that exited by themselves: their own children (gunicorn
    # or Celery pool workers) may outlive them in the group.
    for name, proc in procs.items():
        if proc.poll() is None:
            warn(f"{name} did not stop within {timeout:.0f} s; killing it")
        signal_group(proc, signal.SIGKILL)
        proc.wait()


def signal_group(proc: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


def wait_for_ping(name: str, proc: subprocess.Popen, client: redis.Redis, log: Path, *,
                  timeout: float = 15.0) -> None:
    """Wait until the Redis-protocol server ``proc`` (called ``name``) answers ``client``'s PING;
    ``StackError`` with the tail of its ``log`` if it exits first or does not answer within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise StackError(f"{name} exited with code {proc.returncode} (log in {log}):\n{tail(log)}")
        with contextlib.suppress(redis.RedisError):
            if client.ping():
                return
        if time.monotonic() > deadline:
            raise StackError(f"{name} did not answer within {timeout:.0f} s (log in {log}):\n{tail(log)}")
        time.sleep(0.05)


# --- Local ports -------------------------------------------------------------------

def answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # Like the servers themselves, ignore TIME_WAIT left by our previous run.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A TCP port nothing listens on at this moment, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pick_port(preferred: int) -> int:
    return preferred if port_is_free(preferred) else free_port()
