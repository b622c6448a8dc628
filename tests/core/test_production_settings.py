"""Production settings: a real secret key, Django's deploy checks clean, HTTPS by default
with the probes reachable over plain HTTP, and the local stacks that serve plain HTTP."""
import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from config.settings.base import DEV_SECRET_KEY
from stack import procfile

REPO = Path(__file__).resolve().parents[2]
HTTPS_SETTINGS = ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS",
                  "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "TRUST_X_FORWARDED_PROTO")


def _run(args: list[str], **env: str | None) -> subprocess.CompletedProcess:
    """``args`` under production settings, with nothing of this run's environment that they read."""
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(("DJANGO_", "PYTEST_")) and k not in {"SECRET_KEY", *HTTPS_SETTINGS}}
    environ |= {"DJANGO_SETTINGS_MODULE": "config.settings.production", **env}
    environ = {k: v for k, v in environ.items() if v is not None}  # None: leave the variable unset
    return subprocess.run([sys.executable, *args], cwd=REPO, env=environ, capture_output=True, text=True,
                          timeout=120)


SETUP = ["-c", "import django; django.setup()"]


@pytest.mark.parametrize("key", [DEV_SECRET_KEY, "a-short-but-random-Key-0123456789", "ab" * 40],
                         ids=["development-key", "49-chars-or-fewer", "few-distinct-chars"])
def test_production_settings_refuse_a_known_or_weak_secret_key(key):
    result = _run(SETUP, SECRET_KEY=key)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is" in result.stderr
    assert "long random string" in result.stderr


@pytest.mark.parametrize("entry", [["manage.py", "shell", "-c", "from django.conf import settings as s; "
                                                            "print(s.SETTINGS_MODULE, s.DEBUG)"],
                                   ["-c", "import config.celery_app; from django.conf import settings as s; "
                                          "print(s.SETTINGS_MODULE, s.DEBUG)"]],
                         ids=["manage.py", "celery-app"])
def test_every_entry_point_defaults_to_production_settings(entry):
    """A plain ``manage.py`` or ``celery -A config.celery_app`` (``honcho start worker``) runs
    with DEBUG off and refuses to start without a real key: development is opt-in."""
    started = _run(entry, SECRET_KEY=secrets.token_urlsafe(50), DJANGO_SETTINGS_MODULE=None)
    assert started.returncode == 0 and started.stdout.split()[-2:] == ["config.settings.production", "False"], (
        started.stdout + started.stderr)
    keyless = _run(entry, DJANGO_SETTINGS_MODULE=None)
    assert keyless.returncode != 0 and "SECRET_KEY is not set" in keyless.stderr, keyless.stderr
    assert "DJANGO_SETTINGS_MODULE=config.settings.local" in keyless.stderr
    opted_in = _run(entry, DJANGO_SETTINGS_MODULE="config.settings.local")
    assert opted_in.returncode == 0 and opted_in.stdout.split()[-2:] == ["config.settings.local", "True"], (
        opted_in.stdout + opted_in.stderr)


def test_the_example_environment_sets_no_secret_key():
    lines = (REPO / ".env.example").read_text().splitlines()
    assert not [line for line in lines if line.startswith("SECRET_KEY=") and line != "SECRET_KEY="]


def test_production_settings_start_with_a_long_random_key():
    result = _run(SETUP, SECRET_KEY=secrets.token_urlsafe(38))  # 51 characters
    assert result.returncode == 0, result.stderr


def test_the_deploy_checks_pass_with_the_default_https_settings():
    result = _run(["manage.py", "check", "--deploy"], SECRET_KEY=secrets.token_urlsafe(50),
                  ALLOWED_HOSTS="timeline.example.com")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNINGS" not in output and ".W0" not in output, output
    assert "no issues" in output


# What a production server answers to a plain HTTP request (no database needed:
# the redirect comes first, and /healthz and a 401 touch nothing).
PROBE = textwrap.dedent("""
    import django
    from django.test import Client

    django.setup()
    client = Client()
    print("healthz", client.get("/healthz").status_code)
    r = client.get("/v1/users/me")
    print("api", r.status_code, r.headers.get("Location"))
    print("forwarded", client.get("/v1/users/me", headers={"X-Forwarded-Proto": "https"}).status_code)
    print("hsts", client.get("/healthz", secure=True).headers.get("Strict-Transport-Security"))
""")


def _probe(**env) -> dict[str, str]:
    result = _run(["-c", PROBE], SECRET_KEY=secrets.token_urlsafe(50), **env)
    assert result.returncode == 0, result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.splitlines())


def test_plain_http_is_redirected_to_https_but_the_probes_answer():
    answers = _probe()
    assert answers["healthz"] == "200"  # load balancers probe over plain HTTP
    assert answers["api"] == "301 https://testserver/v1/users/me"
    assert answers["forwarded"] == "301"  # X-Forwarded-Proto is not trusted unless asked for
    assert answers["hsts"] == "max-age=31536000; includeSubDomains; preload"


def test_behind_a_tls_proxy_its_forwarded_proto_is_trusted_once_enabled():
    assert _probe(TRUST_X_FORWARDED_PROTO="1")["forwarded"] == "401"


def test_the_redirect_can_be_switched_off():
    assert _probe(SECURE_SSL_REDIRECT="0")["api"] == "401 None"


def test_a_loopback_stack_serves_plain_http_unless_told_otherwise(tmp_path):
    local = procfile.process_env({"WEB_HOST": "127.0.0.1"}, tmp_path)
    assert {name: local[name] for name in procfile.LOOPBACK_PLAIN_HTTP} == dict.fromkeys(
        procfile.LOOPBACK_PLAIN_HTTP, "0")
    assert procfile.process_env({}, tmp_path)["SECURE_SSL_REDIRECT"] == "0"  # WEB_HOST's default is loopback
    assert procfile.process_env({"WEB_HOST": "127.0.0.1", "SESSION_COOKIE_SECURE": "1"},
                                tmp_path)["SESSION_COOKIE_SECURE"] == "1"
    public = procfile.process_env({"WEB_HOST": "0.0.0.0"}, tmp_path)
    assert not set(procfile.LOOPBACK_PLAIN_HTTP) & set(public)


def test_docker_compose_names_its_allowed_hosts():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    hosts = compose["x-app"]["environment"]["ALLOWED_HOSTS"]
    assert "*" not in hosts
    assert hosts == "${ALLOWED_HOSTS:-localhost,127.0.0.1}"


def test_docker_compose_publishes_no_default_secret_and_gives_the_app_its_own_storage_user():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    app, services = compose["x-app"]["environment"], compose["services"]
    minio = services["s3"]["environment"]
    for value in (app["SECRET_KEY"], app["AWS_SECRET_ACCESS_KEY"], minio["MINIO_ROOT_PASSWORD"]):
        assert value.startswith("${") and ":?" in value, value  # required, never a default
    assert app["AWS_ACCESS_KEY_ID"] != minio["MINIO_ROOT_USER"]
    assert "MINIO_ROOT_PASSWORD" not in str(app)  # the app never holds the administrator's password
    setup = services["s3-setup"]["command"][0]
    assert f"arn:aws:s3:::{app['AWS_STORAGE_BUCKET_NAME']}/*" in setup and '"arn:aws:s3:::*' not in setup
    for name in ("s3", "web"):
        for port in services[name]["ports"]:
            assert port.startswith("${BIND_ADDRESS:-127.0.0.1}:"), (name, port)
