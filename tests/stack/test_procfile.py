"""The stack's processes come from the Procfile: the names, the command lines the
runner starts (and how: a shell that execs them, the virtualenv first on PATH),
and the supervisor that restarts a worker or beat that dies."""
import contextlib
import os
import signal
import socket
import time
from pathlib import Path

import pytest
from honcho.environ import parse_procfile

from stack import common, procfile, supervisor

REPO = Path(__file__).resolve().parents[2]


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def _env(**values) -> dict[str, str]:
    return procfile.process_env({"PATH": os.environ.get("PATH", os.defpath), **values}, Path("/srv/stack data"))


def test_the_runner_reads_the_procfile_with_honchos_parser():
    commands = procfile.load()
    assert list(commands) == ["web", "stream", "worker", "beat"]
    assert commands == dict(parse_procfile((REPO / "Procfile").read_text()).processes)


def test_the_gunicorn_command_line_comes_out_of_the_procfile():
    web = procfile.expanded(procfile.load()["web"], _env(PORT="9001", WEB_CONCURRENCY="3"))
    assert web[:2] == ["gunicorn", "config.wsgi:application"]
    assert _option(web, "--bind") == "127.0.0.1:9001"
    assert _option(web, "--workers") == "3"
    assert _option(web, "--worker-class") == "sync"
    assert _option(web, "--threads") == "1"
    assert _option(web, "--config") == "config/gunicorn.py"  # the metrics hooks; no access log of its own
    assert "--access-logfile" not in web
    assert "--no-control-socket" in web
    assert _option(procfile.expanded(procfile.load()["web"], _env(WEB_HOST="0.0.0.0")), "--bind") == "0.0.0.0:8000"


def test_the_stream_process_listens_next_to_the_web_server():
    stream = procfile.expanded(procfile.load()["stream"], _env(PORT="9001"))
    assert stream[:2] == ["uvicorn", "config.asgi:stream_application"]
    assert (_option(stream, "--host"), _option(stream, "--port")) == ("127.0.0.1", "9002")  # PORT + 1
    assert _option(procfile.expanded(procfile.load()["stream"], _env()), "--port") == "8001"
    assert _option(procfile.expanded(procfile.load()["stream"], _env(PORT="9001", STREAM_PORT="7000")),
                   "--port") == "7000"
    assert _option(stream, "--workers") == "1"
    with socket.socket() as taken:  # the port after PORT in use: a spare one instead
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        moved = _option(procfile.expanded(procfile.load()["stream"], _env(PORT=str(busy - 1))), "--port")
        assert moved != str(busy) and common.port_is_free(int(moved))


def test_unset_sizing_follows_the_machine():
    cpus = common.cpu_count()
    commands, env = procfile.load(), _env()
    assert _option(procfile.expanded(commands["web"], env), "--workers") == str(2 * cpus)
    worker = procfile.expanded(commands["worker"], env)
    assert worker[:4] == ["celery", "-A", "config.celery_app", "worker"]
    assert _option(worker, "--concurrency") == str(cpus)
    assert _option(worker, "--pool") == "prefork"
    assert _option(procfile.expanded(commands["worker"], _env(CELERY_POOL="threads")), "--pool") == "threads"
    beat = procfile.expanded(commands["beat"], env)
    assert beat[:4] == ["celery", "-A", "config.beat", "beat"]
    assert _option(beat, "--schedule") == "/srv/stack data/celerybeat-schedule"  # one argument, space and all


def test_each_entry_is_execd_by_a_shell_with_the_virtualenv_first_on_path(tmp_path):
    env = _env()
    assert env["PATH"].split(os.pathsep)[0] == str(procfile.VENV_BIN)
    assert procfile.shell_argv("celery -A x worker") == ["/bin/sh", "-c", "exec celery -A x worker"]
    out = tmp_path / "out"
    script = (f"import os, sys, time; open({str(out)!r}, 'w').write('%d %s' % (os.getpid(), sys.executable)); "
              "time.sleep(30)")
    proc = procfile.start(f'python -c "{script}"', env)
    try:
        deadline = time.monotonic() + 20
        while not (out.exists() and out.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        pid, executable = out.read_text().split(" ", 1)
        assert int(pid) == proc.pid, "the shell execs the command: its pid is the process's own"
        assert Path(executable).parent == procfile.VENV_BIN, "python came from the virtualenv"
    finally:
        common.stop_processes({"python": proc})


@pytest.fixture
def own_signal_handlers():
    """run_stack installs its handlers in this process: give pytest's back afterwards."""
    saved = {signum: signal.getsignal(signum) for signum in common.HANDLED_SIGNALS}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_the_supervisor_runs_the_procfile_and_restarts_a_dying_worker(tmp_path, monkeypatch, capsys,
                                                                      own_signal_handlers):
    starts = tmp_path / "starts"
    (tmp_path / "Procfile").write_text(
        "web: sleep 30\n"
        f"worker: sh -c 'echo worker >> {starts}; exit 3'\n"
        f"beat: sh -c 'echo beat >> {starts}; exec sleep 30'\n")
    monkeypatch.setattr(procfile, "PROCFILE", tmp_path / "Procfile")
    monkeypatch.setattr(supervisor, "MAX_RESTARTS", 2)
    with contextlib.ExitStack() as cleanup:
        code = supervisor.run_stack(dict(os.environ), tmp_path, cleanup)
    assert code == 3, "a worker that keeps dying stops the stack with its exit code"
    assert starts.read_text().split().count("worker") == 3, "started, then started again twice"
    assert starts.read_text().split().count("beat") == 1
    out, err = capsys.readouterr()
    assert err.count("worker exited with code 3; starting it again") == 2
    assert "worker exited with code 3; stopping the rest" in err
    assert "stopping web, beat" in out


def test_the_stack_shares_one_metrics_directory_emptied_at_start(tmp_path, monkeypatch, own_signal_handlers):
    seen = tmp_path / "seen"
    stale = tmp_path / "metrics" / "counter_1.db"
    stale.parent.mkdir()
    stale.write_text("from the last run")
    (tmp_path / "Procfile").write_text(
        f"web: sh -c 'echo web $PROMETHEUS_MULTIPROC_DIR >> {seen}; ls $PROMETHEUS_MULTIPROC_DIR >> {seen}; "
        f"for i in $(seq 100); do grep -q worker {seen} && break; sleep 0.1; done; exit 4'\n"
        f"worker: sh -c 'echo worker $PROMETHEUS_MULTIPROC_DIR >> {seen}; exec sleep 30'\n")
    monkeypatch.setattr(procfile, "PROCFILE", tmp_path / "Procfile")
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with contextlib.ExitStack() as cleanup:
        supervisor.run_stack(dict(os.environ), tmp_path, cleanup)
    lines = seen.read_text().splitlines()
    assert f"web {tmp_path / 'metrics'}" in lines
    assert f"worker {tmp_path / 'metrics'}" in lines
    assert "counter_1.db" not in lines, "the last run's samples were left to merge into this one's"
