"""Fixtures shared by every suite: an S3 endpoint of the run's own, an isolated Redis key
space per test, users, API clients."""
import contextlib
import copy
import os
import uuid

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from core import breaker
from core import redis as core_redis
from mastoapi.hashers import ClientSecretHasher
from social.models import TOKEN_VERSION_CLAIM, User
from stack.s3 import start_s3
from tests.factories import PASSWORD, UserFactory
from tests.helpers import free_port


def _delete_keys(prefix: str) -> None:
    # On a Redis Cluster, SCAN every master (and DEL per slot).
    keys = list(core_redis.scan_iter(match=f"{prefix}*"))
    for start in range(0, len(keys), 500):
        core_redis.delete(keys[start : start + 500])


@pytest.fixture(scope="session", autouse=True)
def s3_endpoint(tmp_path_factory):
    """The run's own local S3 endpoint (a real HTTP server on loopback) with the media
    bucket ready; processes the tests start inherit it through the environment."""
    from media import storage

    with contextlib.ExitStack() as cleanup:
        url = start_s3(free_port(), tmp_path_factory.mktemp("s3") / "s3.log", cleanup)
        saved = os.environ.get("AWS_S3_ENDPOINT_URL")
        os.environ["AWS_S3_ENDPOINT_URL"] = url
        with override_settings(AWS_S3_ENDPOINT_URL=url, MEDIA_CDN_URL=""):
            storage.bucket_ensure()
            yield url
        if saved is None:
            del os.environ["AWS_S3_ENDPOINT_URL"]
        else:
            os.environ["AWS_S3_ENDPOINT_URL"] = saved


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    """pytest-django's test database, dropped only after this process's Snowflake lease
    connection is closed (PostgreSQL refuses to drop a database in use)."""
    from tweets import snowflake

    yield
    snowflake._generator.close()


@pytest.fixture(scope="session", autouse=True)
def redis_session_namespace():
    """Remove what the run left under its own prefix (the broker's bindings, for one)."""
    from django.conf import settings

    prefix = settings.REDIS_KEY_PREFIX
    yield prefix
    _delete_keys(prefix)


@pytest.fixture(autouse=True)
def redis_namespace(settings):
    """Give each test its own Redis key prefix, and remove its keys afterwards."""
    prefix = f"{settings.REDIS_KEY_PREFIX}{uuid.uuid4().hex[:12]}:"
    settings.REDIS_KEY_PREFIX = prefix
    yield prefix
    _delete_keys(prefix)


@pytest.fixture(autouse=True)
def fresh_breakers():
    """Each test starts with every Redis circuit breaker closed (they are per process)."""
    breaker.reset()
    yield
    breaker.reset()


@pytest.fixture
def redis_down(settings):
    """Point the product's Redis at a port nothing listens on (connection refused, as with
    a killed server). Returns ``down(flag)``: ``down(False)`` brings the live Redis back."""
    live = settings.CACHES
    dead = copy.deepcopy(live)
    dead["default"]["LOCATION"] = f"redis://127.0.0.1:{free_port()}/0"

    def down(flag: bool = True) -> None:
        settings.CACHES = dead if flag else live
        breaker.reset()

    down(True)
    yield down
    down(False)


@pytest.fixture
def celery_worker():
    """A worker thread on the configured broker, with eager execution switched off."""
    from celery.contrib.testing.worker import start_worker

    from config.celery_app import app

    app.conf.task_always_eager = False
    try:
        with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False,
                          shutdown_timeout=30, loglevel="WARNING") as worker:
            yield worker
    finally:
        app.conf.task_always_eager = True
        # The worker's threads kept their database sessions from task to task (CELERY_DB_REUSE_MAX), and a
        # thread's Django connections are not closed when it ends: end them, or the test database stays in use.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture
def redis():
    """The product's Redis client (a ``RedisCluster`` under ``TEST_REDIS_CLUSTER=1``)."""
    return core_redis.connection()


@pytest.fixture
def announced():
    """What the fan-out announces to the streams (``timelines.signals.tweet_delivered``) during the test:
    ``(tweet_id, author_id, lo, hi)`` a batch, in order."""
    from timelines.signals import tweet_delivered

    heard: list[tuple] = []

    def receiver(sender, *, tweet_id, author_id, lo, hi, **kwargs):
        heard.append((tweet_id, author_id, lo, hi))
    tweet_delivered.connect(receiver, dispatch_uid="tests.announced")
    yield heard
    tweet_delivered.disconnect(dispatch_uid="tests.announced")


@pytest.fixture
def hashings(monkeypatch):
    """Every use of a password hasher (the tests' MD5 one for passwords, and the OAuth
    client secrets' own), counted; the hashing stays real."""
    calls = []
    for hasher in (MD5PasswordHasher, ClientSecretHasher):
        for name in ("verify", "encode"):
            real = getattr(hasher, name)

            def counted(self, *args, _real=real, _name=name, **kwargs):
                calls.append(_name)
                return _real(self, *args, **kwargs)

            monkeypatch.setattr(hasher, name, counted)
    return calls


@pytest.fixture
def make_user(db):
    return UserFactory


def client_for(user) -> APIClient:
    client = APIClient()
    # An access token alone: a refresh token would be recorded (a write) each time. It carries
    # the user's token version as it is now, as a login's would (the instance may be older).
    token = AccessToken.for_user(user)
    token[TOKEN_VERSION_CLAIM] = User.objects.filter(id=user.id).values_list("token_version", flat=True).first() or 0
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def staff(db):
    """A moderator: a superuser, as ``manage.py createsuperuser`` makes one (password ``PASSWORD``)."""
    from social.models import User

    return User.objects.create_superuser(username="moderator", password=PASSWORD)


@pytest.fixture
def moderator_user(db):
    """A moderator as operations make one: staff, in the "moderator" group of social's
    migration 0007 (made again as that migration makes it if a transactional test's
    flush removed it), not a superuser; password ``PASSWORD``."""
    import importlib
    from types import SimpleNamespace

    from django.apps import apps
    from django.contrib.auth.models import Group

    from social.models import User

    migration = importlib.import_module("social.migrations.0007_moderator_group")
    if not Group.objects.filter(name=migration.GROUP).exists():
        migration.moderator_group_create(apps, SimpleNamespace(connection=connection))
    user = User.objects.create_user(username="mod", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=migration.GROUP))
    return user


@pytest.fixture
def api():
    """``api(user)`` -> an APIClient authenticated as ``user`` with a real JWT."""
    return client_for


@pytest.fixture
def anon():
    return APIClient()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter):
    """End the run with each skipped test and why: a test that needs a tool this machine
    lacks skips (``tests.helpers.tool_missing``; under ``CI=true`` it fails instead), and
    the list says so where nobody would otherwise notice. A wrapper run first, so that
    its part after ``yield`` comes last, after pytest's own summary."""
    yield
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    terminalreporter.section(f"Skipped: {len(skipped)} test{'s' if len(skipped) != 1 else ''}, and why")
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        terminalreporter.line(f"{report.nodeid}: {reason.removeprefix('Skipped: ')}")
