""".env.example lists every variable the settings read, with the default they fall back
to (config/envdoc.py), and the scan that finds those variables misses none of them."""
import ast
import runpy
import secrets
from pathlib import Path

import environ
import pytest

from config import envdoc

REPO = Path(__file__).resolve().parents[2]


def test_env_example_lists_every_variable_the_settings_read_with_its_default():
    text = envdoc.ENV_EXAMPLE.read_text()
    reads = envdoc.settings_reads()
    assert envdoc.problems(text, reads) == []
    assert envdoc.unread_entries(text, reads) == []


# runpy warns that it runs a module already imported: on purpose, to record its reads.
@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")
def test_the_scan_finds_every_variable_the_settings_read_when_they_run(monkeypatch):
    """Each settings module executed with django-environ's reads recorded: the source scan
    found all of them (none read by a name it cannot see, through another object)."""
    read: set[str] = set()
    get_value = environ.Env.get_value

    def recording(self, var, *args, **kwargs):
        read.add(var)
        return get_value(self, var, *args, **kwargs)

    monkeypatch.setattr(environ.Env, "get_value", recording)
    monkeypatch.setenv("SECRET_KEY", secrets.token_urlsafe(50))
    monkeypatch.setenv("DATABASE_REPLICA_URL", "postgres://postgres@127.0.0.1:5432/replica")  # its guarded read
    for module in envdoc.SETTINGS_MODULES:
        runpy.run_module(f"config.settings.{module}", run_name=f"envdoc_{module}")
    assert read <= set(envdoc.settings_reads())
    assert len(read) >= 60


def test_the_settings_read_the_environment_only_through_env():
    for module in envdoc.SETTINGS_MODULES:
        source = (envdoc.SETTINGS_DIR / f"{module}.py").read_text()
        assert "os.environ" not in source and "getenv" not in source, module


EXAMPLE = """\
# A comment.
FANOUT_BATCH_SIZE=100000
RATE_LIMIT_TWEETS=30/min
REDIS_CLUSTER=false
DATABASE_REPLICA_MAX_LAG_SECONDS=5
ALLOWED_HOSTS=127.0.0.1,localhost,[::1],testserver
# SECRET_KEY=
# DEBUG=
# STATIC_ROOT=
"""


def _reads(*names):
    reads = envdoc.settings_reads()
    return {name: reads[name] for name in names}


NAMES = ("FANOUT_BATCH_SIZE", "RATE_LIMIT_TWEETS", "REDIS_CLUSTER", "DATABASE_REPLICA_MAX_LAG_SECONDS",
         "ALLOWED_HOSTS", "SECRET_KEY", "DEBUG", "STATIC_ROOT")


def test_values_compare_as_the_settings_parse_them():
    """false is 0 to env.bool, 5 is 5.0 to env.float; commented out is right for a variable
    without one default (SECRET_KEY, DEBUG) or whose default is None (STATIC_ROOT)."""
    assert envdoc.problems(EXAMPLE, _reads(*NAMES)) == []


@pytest.mark.parametrize(("change", "problem"), [
    (("FANOUT_BATCH_SIZE=100000", "FANOUT_BATCH_SIZE=1000"),
     "FANOUT_BATCH_SIZE=1000 in .env.example, but the settings default to 100000"),
    (("RATE_LIMIT_TWEETS=30/min\n", ""), "RATE_LIMIT_TWEETS is read by the settings but missing from .env.example"),
    (("REDIS_CLUSTER=false", "REDIS_CLUSTER=1"), "REDIS_CLUSTER=1 in .env.example, but the settings default to 0"),
    (("FANOUT_BATCH_SIZE=100000", "# FANOUT_BATCH_SIZE="),
     "FANOUT_BATCH_SIZE is commented out in .env.example, but has one default: FANOUT_BATCH_SIZE=100000"),
    (("# DEBUG=", "DEBUG=0"), "DEBUG has no single default (base: 0, local: 1): list it commented out, '# DEBUG='"),
    (("# STATIC_ROOT=", "STATIC_ROOT="), "STATIC_ROOT defaults to None: list it commented out, '# STATIC_ROOT='"),
], ids=["wrong-value", "missing", "wrong-bool", "commented-out", "several-defaults", "none-default"])
def test_the_check_names_each_drift(change, problem):
    text = EXAMPLE.replace(*change)
    reads = _reads(*NAMES)
    assert envdoc.problems(text, reads) == [problem]
    # --write corrects what it can: a wrong value and a missing entry.
    if change[0].split("=")[0] in ("FANOUT_BATCH_SIZE", "RATE_LIMIT_TWEETS", "REDIS_CLUSTER"):
        assert envdoc.problems(envdoc.corrected(text, reads), reads) == []


def test_a_default_naming_another_setting_is_that_settings_default():
    assert envdoc.settings_reads()["CELERY_BROKER_URL"].default == "redis://127.0.0.1:6379/0"


def test_an_entry_nothing_reads_is_named():
    reads = envdoc.settings_reads()
    text = envdoc.ENV_EXAMPLE.read_text() + "NO_SUCH_SETTING=1\n"
    assert envdoc.unread_entries(text, reads) == ["NO_SUCH_SETTING"]


def test_each_beat_job_has_an_interval_setting_of_its_own():
    source = (envdoc.SETTINGS_DIR / "base.py").read_text()
    schedule = next(node.value for node in ast.parse(source).body if isinstance(node, ast.Assign)
                    and getattr(node.targets[0], "id", None) == "CELERY_BEAT_SCHEDULE")
    intervals = [entry.args[1].id for entry in schedule.values]
    reads = envdoc.settings_reads()
    assert len(intervals) == len(set(intervals)) == 7, intervals
    assert all(name in reads for name in intervals), intervals
