"""`make run`'s stack on a machine with nothing but Python: embedded PostgreSQL and Valkey.

Starts ``python -m stack run`` with ``EMBEDDED=1`` (the Procfile's gunicorn, Celery
worker and beat over embedded servers in a fresh data directory), then drives
it over HTTP as a client would: register, follow, post, and read the tweet back
after the worker process has fanned it out.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import free_port, stop_stack, wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _wait_until(predicate, timeout: float, what: str, proc: subprocess.Popen):
    """Wait for ``predicate`` while the stack runs; a request the stack refuses counts as "not yet"."""
    def running():
        assert proc.poll() is None, f"the stack exited early while waiting for {what}"

    return wait_for(predicate, timeout, what=what, check=running, ignore=(requests.RequestException,), interval=0.3)


@pytest.fixture(scope="module")
def embedded_stack(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("stack")
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE"}}
    env |= {"EMBEDDED": "1", "STACK_DATA_DIR": str(tmp_path / "data"), "PORT": str(port),
            "WEB_CONCURRENCY": "2", "CELERY_CONCURRENCY": "1",
            # Every test here logs in from 127.0.0.1, more than 10 times a minute
            # all told; the other limits stay at their defaults.
            "RATE_LIMIT_LOGIN": "1000/min"}
    log = open(tmp_path / "stack.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "stack", "run"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until(lambda: requests.get(f"{base}/readyz", timeout=2).status_code == 200, 240, "/readyz", proc)
        yield base, proc
    except AssertionError:
        log.seek(0)
        raise AssertionError(log.read()[-4000:]) from None
    finally:
        stop_stack(proc)
        log.seek(0)
        output = log.read()
        log.close()
    assert "embedded" in output.lower(), "the stack must say it started embedded servers"
    assert proc.returncode == 0, output[-4000:]


def _register(base: str, *names: str) -> tuple[dict[str, str], dict[str, dict]]:
    """Register ``names`` over HTTP; their ids and their Authorization headers, by name."""
    ids, headers = {}, {}
    for name in names:
        r = requests.post(f"{base}/v1/auth/register", json={"username": name, "password": "s3cret-pass-phrase"})
        assert r.status_code == 201, r.text
        ids[name] = r.json()["user_id"]
        r = requests.post(f"{base}/v1/auth/token", json={"username": name, "password": "s3cret-pass-phrase"})
        headers[name] = {"Authorization": f"Bearer {r.json()['access']}"}
    return ids, headers


def test_embedded_stack_posts_and_reads_a_tweet(embedded_stack):
    base, proc = embedded_stack
    ids, tokens = _register(base, "alice", "bob")
    r = requests.post(f"{base}/v1/users/{ids['alice']}/follow", headers=tokens["bob"])
    assert r.json() == {"following": True, "status": "following"}
    assert requests.get(f"{base}/v1/timeline/home", headers=tokens["bob"]).json()["data"] == []
    r = requests.post(f"{base}/v1/tweets", json={"content": "hello from an embedded stack"},
                      headers=tokens["alice"])
    assert r.status_code == 201, r.text
    tweet_id = r.json()["tweet_id"]

    def delivered():
        page = requests.get(f"{base}/v1/timeline/home", headers=tokens["bob"], timeout=5).json()
        return page if page["data"] else None

    page = _wait_until(delivered, 30, "the fan-out to reach bob", proc)
    assert [t["tweet_id"] for t in page["data"]] == [tweet_id]
    assert page["data"][0]["author"]["username"] == "alice"


def test_the_loopback_stack_serves_the_api_and_the_admin_over_plain_http(embedded_stack):
    # Production settings, which default to HTTPS: the runner turns that off for loopback.
    base, _ = embedded_stack
    r = requests.get(f"{base}/admin/login/", allow_redirects=False, timeout=10)
    assert r.status_code == 200
    csrf = next(c for c in r.cookies if c.name == "csrftoken")
    assert not csrf.secure  # a browser would drop a Secure cookie over http, and the login with it
    assert requests.get(f"{base}/v1/users/me", allow_redirects=False, timeout=10).status_code == 401
    assert "Strict-Transport-Security" not in r.headers


def test_the_smoke_script_passes_against_the_embedded_stack(embedded_stack):
    base, _ = embedded_stack
    result = subprocess.run([sys.executable, "scripts/smoke.py", base], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all checks passed" in result.stdout


def _series(base: str) -> dict[tuple[str, tuple], float]:
    text = requests.get(f"{base}/metrics", timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _total(series: dict, name: str, **labels) -> float:
    return sum(v for (n, ls), v in series.items() if n == name and all(dict(ls).get(k) == w for k, w in labels.items()))


def test_metrics_from_any_web_worker_include_the_celery_workers_fan_out(embedded_stack):
    """Two gunicorn workers and the Celery worker share PROMETHEUS_MULTIPROC_DIR: the fan-out
    series, written only in the Celery worker's process, are in every web worker's /metrics."""
    base, proc = embedded_stack
    user_ids, headers = _register(base, "carol", "dave")
    r = requests.post(f"{base}/v1/users/{user_ids['carol']}/follow", headers=headers["dave"])
    assert r.status_code == 200, r.text
    r = requests.get(f"{base}/v1/timeline/home", headers=headers["dave"])  # dave's timeline is cached
    assert r.status_code == 200, r.text
    before = _series(base)
    r = requests.post(f"{base}/v1/tweets", json={"content": "counted in another process"}, headers=headers["carol"])
    assert r.status_code == 201, r.text
    tweet_id = r.json()["tweet_id"]

    # Fan-outs of earlier tests may still be draining and move the series too: wait for
    # this tweet's delivery itself first, then for the series it moved.
    def delivered():
        page = requests.get(f"{base}/v1/timeline/home", headers=headers["dave"], timeout=5).json()
        return page if [t["tweet_id"] for t in page["data"]] == [tweet_id] else None

    _wait_until(delivered, 30, "carol's tweet in dave's timeline", proc)

    def observed():
        series = _series(base)
        done = all(_total(series, name, **labels) > _total(before, name, **labels)
                   for name, labels in (("timeline_fanout_lag_seconds_count", {"mode": "push"}),
                                        ("timeline_fanout_deliveries_total", {})))
        return series if done else None

    after = _wait_until(observed, 30, "the Celery worker's fan-out in /metrics", proc)
    assert _total(after, "timeline_celery_broker_up") == 1
    # Fresh connections land on either web worker: every answer carries every process's series.
    for _ in range(6):
        again = _series(base)
        assert _total(again, "timeline_fanout_lag_seconds_count", mode="push") >= _total(
            after, "timeline_fanout_lag_seconds_count", mode="push")
