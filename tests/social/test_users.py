"""The user object: reading a profile and editing one's own (SPEC §5)."""
import pytest

from social import services as social_services
from social.models import User

pytestmark = pytest.mark.django_db

ME = "/v1/users/me"
USER_KEYS = {"user_id", "username", "display_name", "is_private", "followers_count", "following_count"}


def test_get_user_has_exactly_the_user_object_shape(api, make_user):
    alice = make_user(username="alice", display_name="Alice A.")
    bob = make_user()

    r = api(bob).get(f"/v1/users/{alice.id}")

    assert r.status_code == 200, r.content
    assert r.json() == {
        "user_id": str(alice.id),
        "username": "alice",
        "display_name": "Alice A.",
        "is_private": False,
        "followers_count": 0,
        "following_count": 0,
    }


def test_get_user_counts_are_integers_and_id_is_a_string(api, make_user):
    alice, bob = make_user(), make_user()
    assert api(bob).post(f"/v1/users/{alice.id}/follow").status_code == 200

    body = api(bob).get(f"/v1/users/{alice.id}").json()

    assert set(body) == USER_KEYS
    assert isinstance(body["user_id"], str) and body["user_id"] == str(alice.id)
    assert body["followers_count"] == 1 and type(body["followers_count"]) is int
    assert body["following_count"] == 0 and type(body["following_count"]) is int
    assert type(body["is_private"]) is bool


def test_get_private_user_shows_is_private(api, make_user):
    alice, bob = make_user(is_private=True), make_user()

    assert api(bob).get(f"/v1/users/{alice.id}").json()["is_private"] is True


def test_get_me_returns_own_user_object(api, make_user):
    alice = make_user(username="alice")

    r = api(alice).get(ME)

    assert r.status_code == 200
    assert set(r.json()) == USER_KEYS
    assert r.json()["user_id"] == str(alice.id)


def test_get_unknown_user_is_404(api, make_user):
    alice = make_user()
    unknown = User.objects.order_by("-id").values_list("id", flat=True).first() + 1000

    r = api(alice).get(f"/v1/users/{unknown}")

    assert r.status_code == 404
    assert "detail" in r.json()


def test_get_suspended_user_is_404(api, make_user):
    alice, bob = make_user(), make_user()
    social_services.user_suspend(user_id=alice.id)

    assert api(bob).get(f"/v1/users/{alice.id}").status_code == 404


@pytest.mark.parametrize(
    "raw_id",
    [
        "abc",
        "1a",
        "-1",
        "1.5",
        "0",
        "%20",
        "12345678901234567890",  # 20 digits
        str(2**63),  # one past BIGINT
        str(2**63 - 1),  # the largest BIGINT: a valid id that does not exist
        str(2**64),
        "١٢٣",  # Arabic-Indic digits
    ],
    ids=["alpha", "mixed", "negative", "decimal", "zero", "space", "20-digits", "2^63", "2^63-1", "2^64",
         "non-ascii-digits"],
)
def test_get_user_with_malformed_or_out_of_range_id_is_404_not_500(api, make_user, raw_id):
    alice = make_user()

    r = api(alice).get(f"/v1/users/{raw_id}")

    assert r.status_code == 404, r.content


@pytest.mark.parametrize("suffix", ["", "/follow", "/followers", "/following"])
@pytest.mark.parametrize("raw_id", ["12345678901234567890", str(2**63), "abc"], ids=["20-digits", "2^63", "alpha"])
def test_every_user_route_is_404_for_an_id_that_is_not_one(api, make_user, raw_id, suffix):
    alice = make_user()

    r = api(alice).get(f"/v1/users/{raw_id}{suffix}")

    assert r.status_code == 404, (suffix, r.status_code)


# --- PATCH /v1/users/me --------------------------------------------------------------


def test_patch_me_display_name(api, make_user):
    alice = make_user(username="alice", display_name="Old")
    client = api(alice)

    r = client.patch(ME, {"display_name": "New Name"}, format="json")

    assert r.status_code == 200, r.content
    assert r.json() == {
        "user_id": str(alice.id),
        "username": "alice",
        "display_name": "New Name",
        "is_private": False,
        "followers_count": 0,
        "following_count": 0,
    }
    assert api(make_user()).get(f"/v1/users/{alice.id}").json()["display_name"] == "New Name"


def test_patch_me_display_name_of_exactly_50_chars_and_blank(api, make_user):
    alice = make_user(display_name="Old")
    client = api(alice)

    assert client.patch(ME, {"display_name": "x" * 50}, format="json").json()["display_name"] == "x" * 50
    assert client.patch(ME, {"display_name": ""}, format="json").json()["display_name"] == ""


def test_patch_me_is_private_both_ways(api, make_user):
    alice = make_user()
    client = api(alice)

    r = client.patch(ME, {"is_private": True}, format="json")
    assert r.status_code == 200
    assert r.json()["is_private"] is True
    assert User.objects.get(id=alice.id).is_private is True

    r = client.patch(ME, {"is_private": False}, format="json")
    assert r.status_code == 200
    assert r.json()["is_private"] is False
    assert User.objects.get(id=alice.id).is_private is False


def test_patch_me_both_fields_at_once(api, make_user):
    alice = make_user()

    r = api(alice).patch(ME, {"display_name": "Priv", "is_private": True}, format="json")

    assert r.status_code == 200
    assert (r.json()["display_name"], r.json()["is_private"]) == ("Priv", True)


def test_patch_me_with_empty_body_changes_nothing(api, make_user):
    alice = make_user(display_name="Same")

    r = api(alice).patch(ME, {}, format="json")

    assert r.status_code == 200
    assert (r.json()["display_name"], r.json()["is_private"]) == ("Same", False)


def test_patch_me_reports_current_counts(api, make_user):
    alice, bob = make_user(), make_user()
    api(bob).post(f"/v1/users/{alice.id}/follow")

    r = api(alice).patch(ME, {"display_name": "A"}, format="json")

    assert r.json()["followers_count"] == 1


def test_patch_me_display_name_over_50_chars_is_400(api, make_user):
    alice = make_user(display_name="Old")

    r = api(alice).patch(ME, {"display_name": "x" * 51}, format="json")

    assert r.status_code == 400
    assert "display_name" in r.json()
    assert User.objects.get(id=alice.id).display_name == "Old"


@pytest.mark.parametrize("value", ["maybe", "", None, [True], {"v": True}, 2],
                         ids=["maybe", "empty", "null", "list", "object", "two"])
def test_patch_me_is_private_invalid_is_400(api, make_user, value):
    alice = make_user()

    r = api(alice).patch(ME, {"is_private": value}, format="json")

    assert r.status_code == 400, r.content
    assert "is_private" in r.json()
    assert User.objects.get(id=alice.id).is_private is False


@pytest.mark.parametrize("value", [None, ["x"], {"x": 1}, 42, True], ids=["null", "list", "object", "int", "bool"])
def test_patch_me_display_name_invalid_type_is_400(api, make_user, value):
    alice = make_user()

    r = api(alice).patch(ME, {"display_name": value}, format="json")

    assert r.status_code == 400, r.content
    assert "display_name" in r.json()


@pytest.mark.parametrize("raw", ["not json", "[]", "\"x\""], ids=["text", "array", "string"])
def test_patch_me_body_not_a_json_object_is_400(api, make_user, raw):
    alice = make_user()

    r = api(alice).patch(ME, data=raw, content_type="application/json")

    assert r.status_code == 400, r.content


def test_patch_me_cannot_change_username_or_counts(api, make_user):
    alice = make_user(username="alice")

    r = api(alice).patch(ME, {"username": "mallory", "followers_count": 10**6, "user_id": "1"}, format="json")

    assert r.status_code == 200
    assert (r.json()["username"], r.json()["followers_count"]) == ("alice", 0)
    assert User.objects.get(id=alice.id).username == "alice"


def test_patch_someone_else_is_not_a_route(api, make_user):
    alice, bob = make_user(), make_user()

    r = api(alice).patch(f"/v1/users/{bob.id}", {"display_name": "hacked"}, format="json")

    assert r.status_code == 405
    assert User.objects.get(id=bob.id).display_name != "hacked"
