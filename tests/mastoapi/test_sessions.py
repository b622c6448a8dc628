"""A user's sessions (``/v1/auth/sessions``): every app and /v1 sign-in holding a token for the
account, without the tokens, and revoking one ends it (a cached OAuth token too)."""
from datetime import UTC, datetime, timedelta

import pytest
from rest_framework.test import APIClient

from tests.social.test_tokens import bearer, login, refresh

from .test_token_revocation import VERIFY, password_grant, refresh_grant

pytestmark = pytest.mark.django_db(transaction=True)  # the token cache forgets once changes commit

SESSIONS = "/v1/auth/sessions"


def test_the_sessions_list_both_kinds_without_any_token(app_client, make_user):
    alice, bob = make_user(), make_user()
    web, phone = login(alice), login(alice)
    app = password_grant(app_client, alice)
    password_grant(app_client, bob)

    r = bearer(web["access"]).get(SESSIONS)

    assert r.status_code == 200
    sessions = r.json()["data"]
    assert sorted(s["kind"] for s in sessions) == ["jwt", "jwt", "oauth"]
    oauth = next(s for s in sessions if s["kind"] == "oauth")
    assert oauth["app_name"] == "tests" and oauth["scopes"] == ["read"] and oauth["session_id"].startswith("oauth-")
    assert [s["current"] for s in sessions if s["kind"] == "jwt"].count(True) == 1
    now = datetime.now(UTC)
    for session in sessions:
        created, expires = (datetime.fromisoformat(session[k]) for k in ("created_at", "expires_at"))
        assert now - timedelta(minutes=1) < created <= now < expires, session
    created = [datetime.fromisoformat(s["created_at"]) for s in sessions]
    assert created == sorted(created, reverse=True)
    shown = r.content.decode()
    for token in (web["access"], web["refresh"], phone["refresh"], app["access_token"], app["refresh_token"]):
        assert token not in shown


def test_revoking_an_apps_session_ends_its_tokens_at_once(app_client, make_user):
    alice = make_user()
    web = login(alice)
    app = password_grant(app_client, alice)
    assert bearer(app["access_token"]).get(VERIFY).status_code == 200  # cached now
    session_id = next(s["session_id"] for s in bearer(web["access"]).get(SESSIONS).json()["data"]
                      if s["kind"] == "oauth")

    assert bearer(web["access"]).delete(f"{SESSIONS}/{session_id}").status_code == 204

    assert bearer(app["access_token"]).get(VERIFY).status_code == 401
    assert refresh_grant(app_client, app["refresh_token"]).json()["error"] == "invalid_grant"
    assert [s["kind"] for s in bearer(web["access"]).get(SESSIONS).json()["data"]] == ["jwt"]
    assert bearer(web["access"]).delete(f"{SESSIONS}/{session_id}").status_code == 404  # gone


def test_revoking_a_v1_session_ends_its_refresh_token_only(make_user):
    alice = make_user()
    web, phone = login(alice), login(alice)
    listed = bearer(web["access"]).get(SESSIONS).json()["data"]
    phones = next(s["session_id"] for s in listed if not s["current"])

    assert bearer(web["access"]).delete(f"{SESSIONS}/{phones}").status_code == 204

    assert refresh(phone["refresh"]).status_code == 401
    assert refresh(web["refresh"]).status_code == 200
    assert [s["current"] for s in bearer(web["access"]).get(SESSIONS).json()["data"]] == [True]


def test_another_users_session_is_a_404_and_stays(app_client, make_user):
    alice, bob = make_user(), make_user()
    bobs_app, bobs_web = password_grant(app_client, bob), login(bob)
    ids = [s["session_id"] for s in bearer(bobs_web["access"]).get(SESSIONS).json()["data"]]
    client = bearer(login(alice)["access"])

    for session_id in ids:
        r = client.delete(f"{SESSIONS}/{session_id}")
        assert r.status_code == 404 and "detail" in r.json()

    assert bearer(bobs_app["access_token"]).get(VERIFY).status_code == 200
    assert refresh(bobs_web["refresh"]).status_code == 200


@pytest.mark.parametrize("session_id", ["oauth-0", "jwt-x", "other-1", "jwt-99999999999999999999", "jwt-",
                                        "jwt-9223372036854775808", "oauth-9999999999999999999", "jwt-01"])
def test_a_malformed_session_id_is_a_404(make_user, session_id):
    r = bearer(login(make_user())["access"]).delete(f"{SESSIONS}/{session_id}")
    assert r.status_code == 404 and r.json()


def test_the_sessions_need_a_token(db):
    assert APIClient().get(SESSIONS).status_code == 401
    assert APIClient().delete(f"{SESSIONS}/jwt-1").status_code == 401
