"""Refresh tokens rotate and are revoked: on refresh, on logout and on suspension, checked
against PostgreSQL (SPEC §5: ``/v1/auth/token/refresh``, ``/v1/auth/logout``)."""
import threading
import time

import pytest
from django.contrib import admin
from django.db import connections, transaction
from rest_framework.test import APIClient
from rest_framework_simplejwt.exceptions import InvalidToken
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from social import cache as author_cache
from social import services as social_services
from social import tokens
from social.models import User
from tests.factories import PASSWORD

TOKEN = "/v1/auth/token"
REFRESH = "/v1/auth/token/refresh"
LOGOUT = "/v1/auth/logout"
ME = "/v1/users/me"


def login(user) -> dict[str, str]:
    r = APIClient().post(TOKEN, {"username": user.username, "password": PASSWORD}, format="json")
    assert r.status_code == 200, r.content
    return r.json()


def refresh(token: str):
    return APIClient().post(REFRESH, {"refresh": token}, format="json")


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


# --- rotation ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_refresh_answers_a_new_pair_and_the_old_refresh_token_is_refused(make_user):
    alice = make_user()
    first = login(alice)

    r = refresh(first["refresh"])

    assert r.status_code == 200, r.content
    pair = r.json()
    assert set(pair) == {"access", "refresh"} and pair["refresh"] != first["refresh"]
    assert bearer(pair["access"]).get(ME).json()["user_id"] == str(alice.id)
    newer = refresh(pair["refresh"])
    assert newer.status_code == 200  # the new one works, once
    again = refresh(pair["refresh"])
    assert again.status_code == 401
    assert again.json()["detail"] == "Token is blacklisted"


@pytest.mark.django_db
def test_a_refresh_token_of_a_deactivated_user_is_refused_even_while_the_cache_says_active(make_user):
    # Deactivated behind the services' back, so no token is revoked: the refresh itself reads the row.
    alice = make_user()
    token = login(alice)["refresh"]
    User.objects.filter(id=alice.id).update(is_active=False)
    author_cache.refresh(alice)  # a stale entry: still active

    r = refresh(token)

    assert r.status_code == 401
    assert r.json()["detail"] == "No active account found for the given token."


@pytest.mark.django_db
@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 3000, "ünïcode.ü.ü"],
                         ids=["garbage", "dots", "long", "unicode"])
def test_a_malformed_refresh_token_is_a_401(token):
    assert refresh(token).status_code == 401


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{}, {"refresh": ""}, {"refresh": 42}, {"refresh": ["x"]}, {"refresh": None}],
                         ids=["missing", "empty", "number", "list", "null"])
def test_a_refresh_without_a_token_string_is_a_400(body):
    r = APIClient().post(REFRESH, body, format="json")
    assert r.status_code == 400
    assert "refresh" in r.json()


@pytest.mark.django_db(transaction=True)
def test_a_refresh_token_used_twice_at_once_is_honoured_once(make_user):
    token = str(RefreshToken.for_user(make_user()))
    first_done, release, results = threading.Event(), threading.Event(), {}

    def first():
        try:
            with transaction.atomic():  # holds its revocation uncommitted until released
                results["first"] = tokens.refresh_token_rotate(refresh=token)
                first_done.set()
                release.wait(10)
        finally:
            connections.close_all()

    def second():
        first_done.wait(10)
        try:
            results["second"] = tokens.refresh_token_rotate(refresh=token)
        except InvalidToken as error:
            results["second"] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # the second refresh is now waiting on the first one's revocation
    release.set()
    for t in threads:
        t.join(20)

    assert set(results["first"]) == {"access", "refresh"}
    assert isinstance(results["second"], InvalidToken)


# --- logout ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_logout_revokes_the_refresh_token_and_is_idempotent(make_user):
    alice = make_user()
    pair, other = login(alice), login(alice)
    client = bearer(pair["access"])

    assert client.post(LOGOUT, {"refresh": pair["refresh"]}, format="json").status_code == 204
    assert refresh(pair["refresh"]).status_code == 401
    assert client.post(LOGOUT, {"refresh": pair["refresh"]}, format="json").status_code == 204
    assert refresh(other["refresh"]).status_code == 200  # another session of the same user is untouched


@pytest.mark.django_db
def test_logout_with_another_users_refresh_token_is_a_403_and_revokes_nothing(make_user):
    alice, mallory = make_user(), make_user()
    alices = login(alice)["refresh"]

    r = bearer(login(mallory)["access"]).post(LOGOUT, {"refresh": alices}, format="json")

    assert r.status_code == 403
    assert r.json() == {"detail": "This refresh token belongs to another user."}
    assert refresh(alices).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("bad", ["garbage", "a.b.c", "access-token", "ünï"],
                         ids=["garbage", "dots", "access", "unicode"])
def test_logout_with_a_malformed_refresh_token_is_a_400(make_user, bad):
    pair = login(make_user())
    token = pair["access"] if bad == "access-token" else bad

    r = bearer(pair["access"]).post(LOGOUT, {"refresh": token}, format="json")

    assert r.status_code == 400, r.content
    assert "refresh" in r.json()


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{}, {"refresh": ""}, {"refresh": 1}], ids=["missing", "empty", "number"])
def test_logout_without_a_token_string_is_a_400(make_user, body):
    assert bearer(login(make_user())["access"]).post(LOGOUT, body, format="json").status_code == 400


@pytest.mark.django_db
def test_logout_needs_an_access_token_read_from_postgresql(make_user):
    alice = make_user()
    pair = login(alice)
    assert APIClient().post(LOGOUT, {"refresh": pair["refresh"]}, format="json").status_code == 401
    assert bearer(pair["refresh"]).post(LOGOUT, {"refresh": pair["refresh"]}, format="json").status_code == 401
    User.objects.filter(id=alice.id).update(is_active=False)
    author_cache.refresh(alice)  # a stale entry: still active

    assert bearer(pair["access"]).post(LOGOUT, {"refresh": pair["refresh"]}, format="json").status_code == 401


# --- suspension ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_suspending_a_user_revokes_every_refresh_token_they_hold(make_user):
    alice, bob = make_user(), make_user()
    sessions, bobs = [login(alice)["refresh"] for _ in range(3)], login(bob)["refresh"]

    social_services.user_suspend(user_id=alice.id)
    social_services.user_reinstate(user_id=alice.id)  # reinstated: old sessions stay ended

    assert [refresh(token).status_code for token in sessions] == [401, 401, 401]
    assert not OutstandingToken.objects.filter(user=alice, blacklistedtoken__isnull=True).exists()
    assert refresh(bobs).status_code == 200
    assert refresh(login(alice)["refresh"]).status_code == 200  # and a new login works


@pytest.mark.django_db
def test_suspending_twice_revokes_once(make_user):
    alice = make_user()
    login(alice)
    social_services.user_suspend(user_id=alice.id)
    social_services.user_suspend(user_id=alice.id)
    assert BlacklistedToken.objects.filter(token__user=alice).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_suspension_racing_a_refresh_also_revokes_the_token_that_refresh_issues(make_user):
    alice = make_user()
    token = str(RefreshToken.for_user(alice))
    refreshed, release, results = threading.Event(), threading.Event(), {}

    def refresh_in_flight():
        try:
            with transaction.atomic():  # issued, not yet committed, when the suspension starts
                results["pair"] = tokens.refresh_token_rotate(refresh=token)
                refreshed.set()
                release.wait(10)
        finally:
            connections.close_all()

    def suspend():
        refreshed.wait(10)
        try:
            social_services.user_suspend(user_id=alice.id)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=refresh_in_flight), threading.Thread(target=suspend)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    release.set()
    for t in threads:
        t.join(20)
    social_services.user_reinstate(user_id=alice.id)

    assert refresh(results["pair"]["refresh"]).status_code == 401


# --- the admin ------------------------------------------------------------------------------


def test_the_admin_shows_no_refresh_tokens():
    assert not admin.site.is_registered(OutstandingToken)
    assert not admin.site.is_registered(BlacklistedToken)
