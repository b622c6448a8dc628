"""Sessions end when they should: a new password (however it is set) or a suspension ends
every ``/v1`` session, refresh and access tokens alike, and reinstating a user brings none
back; a refresh token replayed after its rotation ends its whole chain (its family)."""
import pytest
from django.contrib.auth.forms import AdminPasswordChangeForm, SetPasswordForm
from django.contrib.auth.hashers import make_password
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from social import services as social_services
from social import tokens
from social.models import User
from tests.factories import PASSWORD

from .test_tokens import ME, bearer, login, refresh

pytestmark = pytest.mark.django_db(transaction=True)  # the author cache is rewritten once changes commit

HOME = "/v1/timeline/home"  # authenticated against the author cache, not PostgreSQL
MASTODON_ME = "/api/v1/accounts/verify_credentials"  # a /v1 JWT is a bearer token there too
NEW_PASSWORD = "a-whole-new-passphrase"


def set_password(user: User) -> None:
    user = User.objects.get(id=user.id)
    user.set_password(NEW_PASSWORD)
    user.save()


def admin_password_form(user: User) -> None:
    form = AdminPasswordChangeForm(User.objects.get(id=user.id),
                                   {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert form.is_valid(), form.errors
    form.save()


def reset_form(user: User) -> None:  # the form a password-reset link leads to
    form = SetPasswordForm(User.objects.get(id=user.id),
                           {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert form.is_valid(), form.errors
    form.save()


def disable_password(user: User) -> None:
    user = User.objects.get(id=user.id)
    user.set_unusable_password()
    user.save(update_fields=["password"])


@pytest.mark.parametrize("change", [set_password, admin_password_form, reset_form, disable_password])
def test_a_new_password_ends_every_session_refresh_and_access_tokens_alike(make_user, change):
    alice, bob = make_user(), make_user()
    sessions, bobs = [login(alice) for _ in range(2)], login(bob)
    for path in (ME, HOME, MASTODON_ME):  # the author cache holds alice's entry now
        assert bearer(sessions[0]["access"]).get(path).status_code == 200

    change(alice)

    assert [refresh(s["refresh"]).status_code for s in sessions] == [401, 401]
    for path in (ME, HOME, MASTODON_ME):
        assert bearer(sessions[1]["access"]).get(path).status_code == 401, path
    assert bearer(bobs["access"]).get(HOME).status_code == 200
    assert refresh(bobs["refresh"]).status_code == 200


def test_a_session_begun_after_the_new_password_works(make_user):
    alice = make_user()
    login(alice)
    set_password(alice)

    r = APIClient().post("/v1/auth/token", {"username": alice.username, "password": NEW_PASSWORD}, format="json")

    assert r.status_code == 200
    pair = r.json()
    for path in (ME, HOME):
        assert bearer(pair["access"]).get(path).status_code == 200
    assert refresh(pair["refresh"]).status_code == 200


def test_rehashing_the_same_password_at_login_ends_no_session(make_user, settings):
    """Django rehashes a password stored with an older hasher when it is checked: the same
    password, so nothing ends."""
    settings.PASSWORD_HASHERS = [*settings.PASSWORD_HASHERS, "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
    alice = make_user()
    session = login(alice)
    User.objects.filter(id=alice.id).update(password=make_password(PASSWORD, hasher="pbkdf2_sha256"))

    login(alice)  # checks and rehashes (MD5 is the test's preferred hasher)

    assert User.objects.get(id=alice.id).password.startswith("md5$")
    assert bearer(session["access"]).get(ME).status_code == 200
    assert refresh(session["refresh"]).status_code == 200


def test_a_profile_change_ends_no_session(make_user):
    alice = make_user()
    session = login(alice)
    social_services.user_update(user=alice, display_name="Alice", is_private=True)
    assert bearer(session["access"]).get(HOME).status_code == 200
    assert refresh(session["refresh"]).status_code == 200


def test_reinstating_a_suspended_user_brings_no_token_back(make_user):
    alice = make_user()
    session = login(alice)
    assert bearer(session["access"]).get(HOME).status_code == 200

    social_services.user_suspend(user_id=alice.id)
    social_services.user_reinstate(user_id=alice.id)

    for path in (ME, HOME, MASTODON_ME):  # the access token has not expired: refused all the same
        assert bearer(session["access"]).get(path).status_code == 401, path
    assert refresh(session["refresh"]).status_code == 401
    assert bearer(login(alice)["access"]).get(HOME).status_code == 200


# --- a replayed refresh token ------------------------------------------------------------


def test_a_replayed_refresh_token_revokes_its_whole_chain_and_no_other(make_user):
    alice = make_user()
    stolen, other_device = login(alice), login(alice)
    first = refresh(stolen["refresh"]).json()  # the thief's (or the owner's) next token
    second = refresh(first["refresh"]).json()

    replay = refresh(stolen["refresh"])  # the owner's copy, rotated away already

    assert replay.status_code == 401 and replay.json()["detail"] == "Token is blacklisted"
    assert refresh(second["refresh"]).status_code == 401  # the chain's live token ended with it
    assert refresh(other_device["refresh"]).status_code == 200  # another sign-in is another chain


def test_a_refresh_keeps_the_chain_and_a_new_login_starts_another(make_user):
    alice = make_user()
    a, b = login(alice), login(alice)
    a2 = refresh(a["refresh"]).json()

    family = {s.outstanding_id: s.family for s in tokens.jwt_sessions(user_id=alice.id)}

    assert len(family) == 2 and len(set(family.values())) == 2
    def fam(raw: str) -> str:
        return RefreshToken(raw, verify=False)["fam"]  # type: ignore[arg-type]

    assert fam(a2["refresh"]) == fam(a["refresh"]) != fam(b["refresh"])


def test_a_replayed_token_of_no_family_revokes_every_refresh_token_of_its_user(make_user):
    alice, bob = make_user(), make_user()
    old = str(RefreshToken.for_user(alice))  # issued before families: no "fam" claim
    assert refresh(old).status_code == 200
    session, bobs = login(alice), login(bob)

    assert refresh(old).status_code == 401

    assert refresh(session["refresh"]).status_code == 401
    assert not OutstandingToken.objects.filter(user=alice, blacklistedtoken__isnull=True).exists()
    assert refresh(bobs["refresh"]).status_code == 200


def test_a_new_password_saved_from_a_stale_row_still_ends_the_sessions_begun_since(make_user):
    alice = make_user()
    stale = User.objects.get(id=alice.id)  # a form loaded before the first change, say
    set_password(alice)
    r = APIClient().post("/v1/auth/token", {"username": alice.username, "password": NEW_PASSWORD}, format="json")
    since = r.json()

    stale.set_password("yet-another-passphrase")
    stale.save()

    assert stale.token_version == 2 == User.objects.get(id=alice.id).token_version
    for path in (ME, HOME):
        assert bearer(since["access"]).get(path).status_code == 401, path
    assert refresh(since["refresh"]).status_code == 401
