"""Registration, tokens and the bearer-auth guard, through the HTTP API (SPEC §5, §6)."""
import json

import pytest
from rest_framework_simplejwt.tokens import RefreshToken

from social import services as social_services
from social.models import User
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

REGISTER = "/v1/auth/register"
TOKEN = "/v1/auth/token"
REFRESH = "/v1/auth/token/refresh"
ME = "/v1/users/me"


def register(client, **body):
    return client.post(REGISTER, body, format="json")


# --- register ------------------------------------------------------------------


def test_register_returns_201_with_string_user_id_and_username(anon):
    r = register(anon, username="alice_01", password=PASSWORD, display_name="Alice")

    assert r.status_code == 201, r.content
    body = r.json()
    assert set(body) == {"user_id", "username"}
    assert isinstance(body["user_id"], str)
    user = User.objects.get(username="alice_01")
    assert body == {"user_id": str(user.id), "username": "alice_01"}
    assert user.display_name == "Alice"
    assert user.check_password(PASSWORD)


def test_register_without_display_name_and_with_15_char_username(anon):
    r = register(anon, username="a" * 15, password=PASSWORD)

    assert r.status_code == 201, r.content
    assert User.objects.get(username="a" * 15).display_name == ""


def test_register_duplicate_username_is_rejected_case_insensitively(anon):
    assert register(anon, username="Alice", password=PASSWORD).status_code == 201

    r = register(anon, username="alice", password=PASSWORD)

    assert r.status_code == 400
    assert "username" in r.json()
    assert User.objects.filter(username__iexact="alice").count() == 1


@pytest.mark.parametrize(
    "username",
    ["", "a" * 16, "bad-name", "bad name", "ünï", "a.b", "@alice", ["alice"], {"u": "alice"}, None, True],
    ids=["empty", "16-chars", "hyphen", "space", "non-ascii", "dot", "at-sign", "list", "object", "null", "bool"],
)
def test_register_invalid_username_is_400(anon, username):
    r = register(anon, username=username, password=PASSWORD)

    assert r.status_code == 400, r.content
    assert "username" in r.json()
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "field, value",
    [("username", 123), ("username", 1.5), ("password", 12345678901234), ("display_name", 42), ("display_name", False)],
    ids=["username-int", "username-float", "password-int", "display-name-int", "display-name-bool"],
)
def test_register_non_string_json_values_are_400_not_coerced(anon, field, value):
    # Regression: DRF's CharField used to coerce 123 to "123" and register it.
    body = {"username": "alice", "password": PASSWORD} | {field: value}

    r = anon.post(REGISTER, body, format="json")

    assert r.status_code == 400, r.content
    assert field in r.json()
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "password",
    ["short1", "password", "qwertyuiop", "1234567890123", "alice_01x"],
    ids=["too-short", "common", "common-2", "numeric", "similar-to-username"],
)
def test_register_weak_password_is_400_and_creates_nobody(anon, password):
    r = register(anon, username="alice_01", password=password)

    assert r.status_code == 400, r.content
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "password, message",
    [("short1", "too short"), ("password", "too common"), ("1234567890123", "entirely numeric")],
    ids=["too-short", "common", "numeric"],
)
def test_register_weak_password_error_is_keyed_by_password(anon, password, message):
    # Regression: validate_password's list-style error used to come back as {"detail": [...]}.
    r = register(anon, username="alice_01", password=password)

    assert r.status_code == 400, r.content
    assert set(r.json()) == {"password"}
    assert any(message in m for m in r.json()["password"])


@pytest.mark.parametrize(
    "body, missing",
    [
        ({"password": PASSWORD}, "username"),
        ({"username": "alice"}, "password"),
        ({}, "username"),
    ],
    ids=["no-username", "no-password", "empty-object"],
)
def test_register_missing_fields_is_400(anon, body, missing):
    r = anon.post(REGISTER, body, format="json")

    assert r.status_code == 400, r.content
    assert missing in r.json()


@pytest.mark.parametrize(
    "raw",
    ["not json at all", "{\"username\": ", "[]", "[{\"username\": \"alice\"}]", "\"alice\"", "42", "null"],
    ids=["text", "truncated", "empty-array", "array", "string", "number", "null"],
)
def test_register_body_that_is_not_a_json_object_is_400(anon, raw):
    r = anon.post(REGISTER, data=raw, content_type="application/json")

    assert r.status_code == 400, r.content
    assert not User.objects.exists()


def test_register_with_non_json_content_type_is_415_not_500(anon):
    r = anon.post(REGISTER, data="username=alice&password=x", content_type="application/x-www-form-urlencoded")

    assert r.status_code == 415


def test_register_display_name_over_50_chars_is_400(anon):
    r = register(anon, username="alice", password=PASSWORD, display_name="x" * 51)

    assert r.status_code == 400
    assert "display_name" in r.json()


def test_register_rejects_nul_byte_in_password(anon):
    r = register(anon, username="alice", password=PASSWORD + "\x00")

    assert r.status_code == 400


# --- tokens -----------------------------------------------------------------------


def test_token_returns_access_and_refresh_that_authenticate(anon, make_user):
    alice = make_user(username="alice")

    r = anon.post(TOKEN, {"username": "alice", "password": PASSWORD}, format="json")

    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == {"access", "refresh"}
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    me = anon.get(ME)
    assert me.status_code == 200
    assert me.json()["user_id"] == str(alice.id)


def test_token_with_wrong_password_is_401(anon, make_user):
    make_user(username="alice")

    r = anon.post(TOKEN, {"username": "alice", "password": PASSWORD + "x"}, format="json")

    assert r.status_code == 401
    assert "access" not in r.json()


def test_token_for_unknown_user_is_401(anon):
    r = anon.post(TOKEN, {"username": "nobody", "password": PASSWORD}, format="json")

    assert r.status_code == 401


def test_login_is_case_insensitive(anon, make_user):
    alice = make_user(username="alice")

    r = anon.post(TOKEN, {"username": "ALICE", "password": PASSWORD}, format="json")

    assert r.status_code == 200, r.content
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {r.json()['access']}")
    assert anon.get(ME).json()["user_id"] == str(alice.id)


def test_password_is_case_sensitive(anon, make_user):
    make_user(username="alice")

    r = anon.post(TOKEN, {"username": "alice", "password": PASSWORD.upper()}, format="json")

    assert r.status_code == 401


def test_token_for_a_suspended_user_is_401(anon, make_user):
    alice = make_user(username="alice")
    social_services.user_suspend(user_id=alice.id)

    r = anon.post(TOKEN, {"username": "alice", "password": PASSWORD}, format="json")

    assert r.status_code == 401


@pytest.mark.parametrize(
    "body", [{}, {"username": "alice"}, {"password": PASSWORD}], ids=["empty", "no-password", "no-username"]
)
def test_token_missing_fields_is_400(anon, make_user, body):
    make_user(username="alice")

    r = anon.post(TOKEN, body, format="json")

    assert r.status_code == 400


@pytest.mark.parametrize("raw", ["not json", "[]", "[1, 2]"], ids=["text", "empty-array", "array"])
def test_token_body_not_a_json_object_is_400(anon, raw):
    r = anon.post(TOKEN, data=raw, content_type="application/json")

    assert r.status_code == 400, r.content


def test_a_password_keeps_its_surrounding_spaces_at_registration_and_at_login(anon):
    password = "  pass phrase with spaces  "
    assert register(anon, username="alice", password=password).status_code == 201

    assert anon.post(TOKEN, {"username": "alice", "password": password}, format="json").status_code == 200
    r = anon.post(TOKEN, {"username": "alice", "password": password.strip()}, format="json")
    assert r.status_code == 401


def test_refresh_returns_a_new_access_token_that_works(anon, make_user):
    alice = make_user(username="alice")
    refresh = str(RefreshToken.for_user(alice))

    r = anon.post(REFRESH, {"refresh": refresh}, format="json")

    assert r.status_code == 200, r.content
    assert set(r.json()) == {"access", "refresh"}
    access = r.json()["access"]
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    assert anon.get(ME).json()["user_id"] == str(alice.id)


@pytest.mark.parametrize("refresh", ["garbage", "a.b.c", ""], ids=["garbage", "three-dots", "empty"])
def test_refresh_with_garbage_token_is_rejected(anon, refresh):
    r = anon.post(REFRESH, {"refresh": refresh}, format="json")

    assert r.status_code == (400 if refresh == "" else 401), r.content


def test_refresh_with_an_access_token_is_401(anon, make_user):
    alice = make_user(username="alice")

    r = anon.post(REFRESH, {"refresh": str(RefreshToken.for_user(alice).access_token)}, format="json")

    assert r.status_code == 401


def test_refresh_missing_field_is_400(anon):
    assert anon.post(REFRESH, {}, format="json").status_code == 400


# --- bearer auth guard ---------------------------------------------------------------


def test_endpoint_without_authorization_is_401(anon, make_user):
    bob = make_user()

    for method, path in [("get", ME), ("patch", ME), ("get", f"/v1/users/{bob.id}"),
                         ("post", f"/v1/users/{bob.id}/follow"), ("get", "/v1/follow-requests")]:
        r = getattr(anon, method)(path)
        assert r.status_code == 401, (method, path, r.status_code)
        assert "detail" in r.json()


@pytest.mark.parametrize(
    "header",
    ["Bearer garbage", "Bearer ", "Bearer a.b.c", "Bearer x y", "Basic YWxpY2U6cGFzcw==", "garbage"],
    ids=["garbage", "empty-token", "fake-jwt", "two-parts", "basic", "no-scheme"],
)
def test_endpoint_with_garbage_authorization_is_401(anon, header):
    anon.credentials(HTTP_AUTHORIZATION=header)

    r = anon.get(ME)

    assert r.status_code == 401, r.content


def test_a_refresh_token_is_not_accepted_as_bearer(anon, make_user):
    alice = make_user()
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(alice)}")

    assert anon.get(ME).status_code == 401


def test_token_of_a_suspended_user_is_401(api, make_user):
    alice = make_user()
    client = api(alice)
    social_services.user_suspend(user_id=alice.id)

    assert client.get(ME).status_code == 401


# --- body size -----------------------------------------------------------------------


def test_request_body_over_64kb_is_413(anon):
    body = json.dumps({"username": "alice", "password": PASSWORD, "display_name": "x" * (65 * 1024)})

    r = anon.post(REGISTER, data=body, content_type="application/json")

    assert r.status_code == 413
    assert not User.objects.exists()


def test_request_body_over_64kb_is_413_on_authenticated_endpoint(api, make_user):
    alice = make_user()
    body = json.dumps({"display_name": "x" * (65 * 1024)})

    r = api(alice).patch(ME, data=body, content_type="application/json")

    assert r.status_code == 413


def test_request_body_just_under_64kb_is_read_and_validated(anon):
    body = json.dumps({"username": "alice", "password": PASSWORD, "display_name": "x" * (60 * 1024)})

    r = anon.post(REGISTER, data=body, content_type="application/json")

    assert r.status_code == 400
    assert "display_name" in r.json()


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", ""], ids=["alpha", "negative", "float", "empty"])
def test_malformed_content_length_is_400_not_500(anon, length):
    body = json.dumps({"username": "alice", "password": PASSWORD})

    r = anon.generic("POST", REGISTER, body, content_type="application/json", CONTENT_LENGTH=length)

    assert r.status_code == 400, r.content
    assert not User.objects.exists()


def test_content_length_over_64kb_is_413_even_with_a_short_body(anon):
    body = json.dumps({"username": "alice", "password": PASSWORD})

    r = anon.generic("POST", REGISTER, body, content_type="application/json", CONTENT_LENGTH=str(65 * 1024))

    assert r.status_code == 413
