"""The OpenAPI schema, the docs page, health probes and the admin."""
import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_the_openapi_schema_generates_without_warnings(tmp_path):
    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    text = (tmp_path / "schema.yml").read_text()
    for path in ("/v1/timeline/home", "/v1/tweets", "/v1/users/{user_id}/follow", "/v1/auth/register"):
        assert f"  {path}:" in text


def test_schema_and_docs_are_served(anon):
    assert anon.get("/v1/schema").status_code == 200
    assert anon.get("/v1/docs").status_code == 200


def test_probes(anon):
    assert anon.get("/healthz").json() == {"status": "ok"}
    assert anon.get("/readyz").json() == {"status": "ok"}


def test_readyz_names_what_is_down(anon, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    r = anon.get("/readyz")
    assert r.status_code == 503
    assert r.json()["failing"] == ["broker"]


def test_the_admin_login_page_and_its_static_files_are_served(client):
    page = client.get("/admin/login/")
    assert page.status_code == 200
    assert client.get("/static/admin/css/base.css").status_code == 200
