"""The API fuzzed against its own OpenAPI schema (schemathesis), over HTTP, as `make run` serves it.

Starts ``python -m stack run`` (the Procfile's gunicorn, Celery worker and beat)
on the test database and the session's S3 endpoint, registers a user over HTTP,
and lets schemathesis log in through ``POST /v1/auth/token`` and send every
operation of ``/v1/schema`` generated requests with all of its checks: no 5xx,
no response outside the schema, no undocumented status code, no valid request
refused and no invalid one accepted. A second test walks the schema's links
(a created tweet is read and deleted, a registered user followed, a timeline
page's ``next_cursor`` asked for) as random sequences of calls.

``FUZZ_EXAMPLES`` sets the examples per operation (default 10 in the suite;
``make fuzz`` runs 40).
"""
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.helpers import free_port, stop_stack, wait_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
PASSWORD = "fuzz-pass-phrase-9"
pytestmark = pytest.mark.slow

# Generous limits: the fuzzer posts, follows and reads far faster than a person.
GENEROUS_LIMITS = {f"RATE_LIMIT_{scope}": "1000000/min"
                   for scope in ("TWEETS", "FOLLOWS", "TIMELINE", "LOGIN", "REGISTER", "MEDIA", "REFRESH")}
# And a media quota no run of presigned uploads (each up to 512 MiB, declared) fills.
GENEROUS_LIMITS["MEDIA_QUOTA_BYTES"] = str(2**60)


def _database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s["PASSWORD"] else ""
    return f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture(scope="module")
def fuzz_server(django_db_setup, django_db_blocker, tmp_path_factory):
    """`make run` on the test database; its tables are flushed and its Redis keys deleted afterwards."""
    import redis as redis_client

    tmp_path = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    prefix = f"fuzz{uuid.uuid4().hex[:8]}:"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env |= GENEROUS_LIMITS | {
        "DATABASE_URL": _database_url(), "REDIS_KEY_PREFIX": prefix, "CELERY_QUEUE": f"{prefix}timeline",
        "STACK_DATA_DIR": str(tmp_path / "data"), "PORT": str(port),
        "WEB_CONCURRENCY": "2", "WEB_THREADS": "4", "CELERY_CONCURRENCY": "1",
    }
    log = open(tmp_path / "stack.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "stack", "run"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def output() -> str:
        log.seek(0)
        return log.read()[-6000:]

    def running():
        assert proc.poll() is None, f"the stack exited early:\n{output()}"

    try:
        with django_db_blocker.unblock():
            wait_for(lambda: requests.get(f"{base}/readyz", timeout=2).status_code == 200, 120,
                     what="/readyz", check=running, ignore=(requests.RequestException,), interval=0.3,
                     details=output)
            yield base
    finally:
        stop_stack(proc)
        log.close()
        with django_db_blocker.unblock():
            from django.core.management import call_command

            call_command("flush", interactive=False, verbosity=0)
        store = redis_client.Redis.from_url(env.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
        keys = list(store.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            store.delete(*keys[start:start + 500])


def _access_token(base: str) -> str:
    """A new user's access token, as a client gets one: register, then ``POST /v1/auth/token``."""
    username = f"fz{uuid.uuid4().hex[:12]}"
    credentials = {"username": username, "password": PASSWORD}
    r = requests.post(f"{base}/v1/auth/register", json=credentials, timeout=10)
    assert r.status_code == 201, r.text
    r = requests.post(f"{base}/v1/auth/token", json=credentials, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["access"]


@pytest.fixture(scope="module")
def api_schema(fuzz_server):
    config = schemathesis.Config.from_dict({
        "base-url": fuzz_server,
        "checks": {"enabled": True},
        "generation": {"max-examples": EXAMPLES},
        # As the schema's security schemes: schemathesis then knows a request it sends
        # with made-up credentials from one with these.
        "auth": {"openapi": dict.fromkeys(("jwtAuth", "readerJwtAuth"), {"bearer": _access_token(fuzz_server)})},
    })
    return schemathesis.openapi.from_url(f"{fuzz_server}/v1/schema?format=json", config=config)


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request):
    # schemathesis 4.32's pytest plugin renames each operation's report through
    # ``node._nodeid``, an attribute pytest 9 no longer has.
    request.node._nodeid = request.node.nodeid


def _outside_the_schema(case, response) -> bool:
    """A refusal for a rule that no OpenAPI schema can state: tweeting someone else's or
    unfinished media, following yourself, a username already taken, a password too like the
    username or on Django's list of common ones, ``cursor`` with ``since`` (either one, not
    both), and what makes credentials well formed. Each is tested in its own suite; here
    only the check that every schema-valid request is accepted skips them."""
    if response.status_code != 400:
        return False
    if case.operation.path.startswith(("/v1/auth/token", "/v1/auth/logout")):
        return True  # credentials (a blank-after-trimming username, a malformed token) no schema describes
    label, body = case.operation.label, case.body if isinstance(case.body, dict) else {}
    query = case.query or {}
    return (
        (label == "POST /v1/tweets" and bool(body.get("media_ids")))
        or (label == "POST /v1/users/{user_id}/follow" and "yourself" in response.text)
        or (label == "POST /v1/auth/register"
            and any(rule in response.text for rule in ("already taken", "too similar", "too common")))
        or (label == "GET /v1/timeline/home" and "cursor" in query and "since" in query)
    )


def _validate(case, response, **kwargs) -> None:
    __tracebackhide__ = True
    excluded = [positive_data_acceptance] if _outside_the_schema(case, response) else None
    case.validate_response(response, excluded_checks=excluded, **kwargs)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_to_the_schema(case):
    _validate(case, case.call())


def test_linked_sequences_of_calls_conform_to_the_schema(api_schema):
    class Machine(api_schema.as_state_machine()):
        def validate_response(self, response, case, additional_checks=None, **kwargs):
            _validate(case, response, transport_kwargs=kwargs or None, recorder=self.recorder)

    Machine.run(settings=settings(max_examples=EXAMPLES, stateful_step_count=10, deadline=None,
                                  suppress_health_check=list(HealthCheck)))
