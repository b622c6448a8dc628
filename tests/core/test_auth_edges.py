"""Tokens that name no valid user, unknown URLs, probe methods, and production's secret key."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

pytestmark = pytest.mark.django_db


def test_refreshing_a_token_of_a_user_who_no_longer_exists_is_a_401(make_user, anon):
    user = make_user()
    refresh = str(RefreshToken.for_user(user))
    user.delete()
    r = anon.post("/v1/auth/token/refresh", {"refresh": refresh}, format="json")
    assert r.status_code == 401


@pytest.mark.parametrize("claim", ["abc", "", ["1"], {"a": 1}, "1\x00"])
def test_a_token_whose_user_claim_is_not_an_id_is_a_401(make_user, claim):
    token = AccessToken.for_user(make_user())
    token["user_id"] = claim
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/v1/users/me").status_code == 401


def test_unknown_urls_answer_json(anon, settings):
    settings.DEBUG = False
    r = anon.get("/v1/no-such-thing")
    assert r.status_code == 404
    assert r.json() == {"detail": "Not found."}


def test_probes_only_answer_safe_methods(anon):
    assert anon.post("/healthz").status_code == 405
    assert anon.put("/readyz").status_code == 405


def test_production_settings_refuse_to_start_without_a_secret_key():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.production"
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], env=env,
                            cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
