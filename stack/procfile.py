"""The stack's processes, read from the ``Procfile`` at the repository root.

The Procfile is the one list of what runs (web, stream, worker, beat): ``make run``,
the benchmark and docker-compose all start its commands, and operators can run
it with ``honcho start``. It is read with honcho's own parser. Each command runs
as ``/bin/sh -c "exec <command>"`` -- the shell expands its ``${VAR:-default}``
settings, then becomes the process, so signals and pids are the process's own --
with the virtualenv's ``bin`` first on ``PATH``.
"""
from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from honcho.environ import parse_procfile

from .common import REPO, StackError, pick_port, spawn

PROCFILE = REPO / "Procfile"
SHELL = "/bin/sh"
# The virtualenv this runner runs in (not resolved: a venv's python is a symlink).
VENV_BIN = Path(sys.executable).parent


def load(path: Path | None = None, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The Procfile's commands by process name, in file order.

    With ``WEB_SERVER`` set in ``env`` (default: this process's environment)
    to anything but ``gunicorn``, the web command is the Procfile's variant
    line ``#web[<WEB_SERVER>]: <command>`` (a comment to honcho).
    """
    path = path or PROCFILE
    try:
        text = path.read_text()
    except OSError as exc:
        raise StackError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    commands = dict(parse_procfile(text).processes)
    if not commands:
        raise StackError(f"{path} names no process (lines like 'web: gunicorn ...').")
    server = (os.environ if env is None else env).get("WEB_SERVER") or DEFAULT_WEB_SERVER
    if server != DEFAULT_WEB_SERVER and "web" in commands:
        variants = web_variants(text)
        if server not in variants:
            known = ", ".join([DEFAULT_WEB_SERVER, *variants])
            raise StackError(f"WEB_SERVER={server} names no web server of {path} (known: {known}).")
        commands["web"] = variants[server]
    return commands


DEFAULT_WEB_SERVER = "gunicorn"
_VARIANT = re.compile(r"^#\s*web\[([A-Za-z0-9_-]+)\]:\s*(.+)$")


def web_variants(text: str) -> dict[str, str]:
    """The Procfile's other web servers: ``#web[<name>]: <command>`` lines, by name."""
    return {m[1]: m[2].strip() for line in text.splitlines() if (m := _VARIANT.match(line.strip()))}


def process_env(env: Mapping[str, str], data_dir: Path) -> dict[str, str]:
    """The environment the Procfile's commands run in.

    ``env``, with the virtualenv's ``bin`` first on ``PATH`` and the data
    directory (beat's schedule lives there). Sizing left unset is the
    Procfile's own default, which follows the machine. The stream process
    listens on ``STREAM_PORT``, by default the port after the web server's ``PORT``
    when that is given and free (a spare one if not; 8001 when neither is set). A web server on
    loopback is reached over plain HTTP: unless set otherwise, it neither
    redirects to HTTPS nor marks its cookies HTTPS-only (production settings
    default to both), so the API and the admin work at http://127.0.0.1.
    """
    out = dict(env)
    if is_loopback(out.get("WEB_HOST") or "127.0.0.1"):
        for name in LOOPBACK_PLAIN_HTTP:
            out.setdefault(name, "0")
    if out.get("PORT", "").isdigit() and not out.get("STREAM_PORT"):
        # The stream process next to the web server, or on a spare port if that one is taken
        # (the instance documents name whichever it is: every process reads STREAM_PORT).
        out["STREAM_PORT"] = str(pick_port(int(out["PORT"]) + 1))
    out["STACK_DATA_DIR"] = str(data_dir)
    out["PATH"] = os.pathsep.join([str(VENV_BIN), out.get("PATH") or os.defpath])
    return out


# Production's HTTPS-only settings, off by default for a loopback stack.
LOOPBACK_PLAIN_HTTP = ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or a name, as given to ``--bind``) is this machine only."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def shell_argv(command: str) -> list[str]:
    """How a Procfile command is started: the shell expands it, then execs it."""
    return [SHELL, "-c", f"exec {command}"]


def start(command: str, env: Mapping[str, str], **kwargs) -> subprocess.Popen:
    """Start one Procfile command in ``env`` (see ``process_env``) in a session of its own."""
    return spawn(shell_argv(command), env, **kwargs)


def expanded(command: str, env: Mapping[str, str]) -> list[str]:
    """The argument vector ``command`` execs in ``env``, its expansions done by the same shell.

    For reports and tests: what exactly a process was started with.
    """
    script = f'set -- {command}; printf "%s\\0" "$@"'
    result = subprocess.run([SHELL, "-c", script], env=dict(env), cwd=REPO, capture_output=True, check=True)
    return result.stdout.decode().split("\0")[:-1]
