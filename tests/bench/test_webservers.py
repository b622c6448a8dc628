"""The Procfile's web command runs gunicorn (the default) or granian by WEB_SERVER, with the same settings; what
granian's workers do in place of gunicorn's hooks."""
import os
from pathlib import Path

import pytest

from stack import common, procfile

REPO = Path(__file__).resolve().parents[2]


def _env(**values) -> dict[str, str]:
    return procfile.process_env({"PATH": os.environ.get("PATH", os.defpath), **values}, Path("/srv/data"))


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_unset_or_gunicorn_is_the_gunicorn_sync_line():
    for env in (_env(), _env(WEB_SERVER="gunicorn")):
        web = procfile.expanded(procfile.load(env=env)["web"], env)
        assert web[:2] == ["gunicorn", "config.wsgi:application"]
        assert (_option(web, "--worker-class"), _option(web, "--threads")) == ("sync", "1")


def test_gunicorn_gthread_workers_come_from_the_environment():
    env = _env(WEB_WORKER_CLASS="gthread", WEB_THREADS="4")
    web = procfile.expanded(procfile.load(env=env)["web"], env)
    assert (_option(web, "--worker-class"), _option(web, "--threads")) == ("gthread", "4")


def test_granian_serves_the_same_application_with_the_same_sizing():
    env = _env(WEB_SERVER="granian", PORT="9001", WEB_CONCURRENCY="3", WEB_THREADS="2")
    commands = procfile.load(env=env)
    assert list(commands) == ["web", "stream", "worker", "beat"], "a variant replaces the web command, adds no process"
    web = procfile.expanded(commands["web"], env)
    assert web[0] == "granian"
    assert _option(web, "--interface") == "wsgi"
    assert "--factory" in web and "config.gunicorn:granian_application" in web
    assert (_option(web, "--host"), _option(web, "--port")) == ("127.0.0.1", "9001")
    assert (_option(web, "--workers"), _option(web, "--blocking-threads")) == ("3", "2")
    assert _option(procfile.expanded(commands["web"], _env(WEB_SERVER="granian")), "--workers") == str(
        2 * common.cpu_count())


def test_an_unknown_web_server_is_named_with_the_known_ones():
    with pytest.raises(common.StackError, match="WEB_SERVER=uwsgi .*known: gunicorn, granian"):
        procfile.load(env=_env(WEB_SERVER="uwsgi"))


def test_the_granian_factory_target_exists_and_honcho_never_sees_the_variant():
    from honcho.environ import parse_procfile

    from config import gunicorn as web_config

    assert callable(web_config.granian_application)
    assert set(dict(parse_procfile((REPO / "Procfile").read_text()).processes)) == {"web", "stream", "worker", "beat"}


def test_granian_workers_mark_dead_the_metrics_of_processes_that_are_gone(tmp_path):
    from config import gunicorn as web_config

    gone = 2**22 + 12345  # above any pid this machine hands out
    for name in (f"gauge_livesum_{gone}.db", f"gauge_liveall_{os.getpid()}.db", f"counter_{gone}.db",
                 f"gauge_all_{gone}.db"):
        (tmp_path / name).write_bytes(b"")
    assert web_config.dead_writers(str(tmp_path)) == {gone}
