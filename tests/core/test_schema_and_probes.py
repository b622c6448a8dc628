"""The OpenAPI schema, the docs page, health probes and the admin."""
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.management import call_command
from django.test import Client

from core import health, proxies

pytestmark = pytest.mark.django_db


def test_the_openapi_schema_generates_without_warnings(tmp_path):
    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    text = (tmp_path / "schema.yml").read_text()
    for path in ("/v1/timeline/home", "/v1/tweets", "/v1/users/{user_id}/follow", "/v1/auth/register"):
        assert f"  {path}:" in text


def test_schema_and_docs_are_served(anon):
    assert anon.get("/v1/schema").status_code == 200
    assert anon.get("/v1/docs").status_code == 200


@pytest.mark.parametrize("method", ["options", "post", "put", "delete"])
def test_the_docs_page_answers_another_method_with_a_405(anon, method):
    assert getattr(anon, method)("/v1/docs").status_code == 405


def test_probes(anon):
    proxies.forget()
    assert anon.get("/healthz").json() == {"status": "ok"}
    assert anon.get("/readyz").json() == {"status": "ok"}


def _requests_from(client, count: int, **meta) -> None:
    for _ in range(count):
        assert client.get("/v1/users/me", **meta).status_code == 401


def test_readyz_warns_when_every_client_seems_to_have_the_proxys_address(anon, settings):
    """Behind a proxy RATE_LIMIT_TRUSTED_PROXIES does not name, every client shares one per-IP budget."""
    proxies.forget()
    _requests_from(anon, proxies.SAMPLE - 1, HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert "warnings" not in anon.get("/readyz").json()  # too few to tell
    _requests_from(anon, 1, HTTP_X_FORWARDED_FOR="198.51.100.8")
    body = anon.get("/readyz").json()
    assert body["status"] == "ok" and "RATE_LIMIT_TRUSTED_PROXIES" in body["warnings"][0], body

    settings.RATE_LIMIT_TRUSTED_PROXIES = 1  # the proxy's header names the clients now
    _requests_from(anon, proxies.SAMPLE // 2, HTTP_X_FORWARDED_FOR="198.51.100.7")
    _requests_from(anon, proxies.SAMPLE // 2, HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert "warnings" not in anon.get("/readyz").json()


def test_readyz_warns_of_one_outside_address_but_not_of_a_developers_loopback(anon):
    proxies.forget()
    _requests_from(anon, proxies.SAMPLE)  # 127.0.0.1, no proxy header: someone trying it out locally
    assert "warnings" not in anon.get("/readyz").json()
    _requests_from(anon, proxies.SAMPLE, REMOTE_ADDR="203.0.113.5")
    assert "203.0.113.5" in anon.get("/readyz").json()["warnings"][0]


def test_readyz_names_what_is_down(anon, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    r = anon.get("/readyz")
    assert r.status_code == 503
    assert r.json()["failing"] == ["broker"]


def test_the_admin_login_page_and_its_static_files_are_served(client):
    page = client.get("/admin/login/")
    assert page.status_code == 200
    assert client.get("/static/admin/css/base.css").status_code == 200


def test_readyz_answers_a_flood_from_one_check_per_period(anon, settings, monkeypatch):
    """Each /readyz opened a PostgreSQL connection of its own: a flood of probes competed
    with real requests for the server's connections. Now each process checks at most
    once per READYZ_CACHE_SECONDS, and concurrent probes wait for that one check."""
    settings.READYZ_CACHE_SECONDS = 60  # longer than the flood takes on a busy machine
    monkeypatch.setattr(health, "_answers", {})  # none left by an earlier test's probes
    opened = []
    real = health.psycopg.connect

    def counted(*args, **kwargs):
        opened.append(1)
        time.sleep(0.05)  # the others arrive while it is connecting
        return real(*args, **kwargs)

    monkeypatch.setattr(health.psycopg, "connect", counted)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: Client().get("/readyz"), range(40)))
    assert {r.status_code for r in answers} == {200}, [r.json() for r in answers if r.status_code != 200][:1]
    assert len(opened) == 1
    settings.READYZ_CACHE_SECONDS = 0.2
    time.sleep(0.25)
    assert anon.get("/readyz").status_code == 200
    assert len(opened) == 2  # the period over, it checks afresh


def test_readyz_checks_again_once_its_period_is_over(anon, settings, monkeypatch):
    settings.READYZ_CACHE_SECONDS = 0.3
    monkeypatch.setattr(health, "_answers", {})
    assert anon.get("/readyz").status_code == 200
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    assert anon.get("/readyz").status_code == 200  # answered from the check just made
    time.sleep(0.35)
    assert anon.get("/readyz").json()["failing"] == ["broker"]
