"""The OpenAPI schema says what the server does: the errors each operation can answer, and
input rules as the server checks them (found by the fuzz test, tests/stack/test_api_fuzz.py)."""
import re

import pytest
from drf_spectacular.generators import SchemaGenerator
from hypothesis import given
from hypothesis import strategies as st

from core.fields import ID_REGEX, MAX_ID, decimal_at_most

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def openapi():
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(openapi):
    for path, methods in openapi["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_every_operation_documents_rate_limits_and_stores_down(openapi):
    for label, operation in operations(openapi):
        assert {"429", "503"} <= set(operation["responses"]), label


def test_authenticated_operations_and_the_token_operations_document_401(openapi):
    for label, operation in operations(openapi):
        answers_401 = "401" in operation["responses"]
        assert answers_401 == (label != "POST /v1/auth/register"), label


def test_input_means_400_in_either_error_shape_and_a_body_means_413(openapi):
    for label, operation in operations(openapi):
        has_input = "requestBody" in operation or any(p["in"] in ("query", "header")
                                                      for p in operation.get("parameters", []))
        if has_input:
            schema = operation["responses"]["400"]["content"]["application/json"]["schema"]
            assert schema == {"anyOf": [{"$ref": "#/components/schemas/Detail"},
                                        {"$ref": "#/components/schemas/FieldErrors"}]}, label
        assert ("413" in operation["responses"]) == ("requestBody" in operation), label
        if any(p["in"] == "path" for p in operation.get("parameters", [])):
            assert "404" in operation["responses"], label


@given(st.integers(min_value=-10, max_value=MAX_ID + 10**6))
def test_the_id_pattern_is_exactly_the_positive_64_bit_ids(number):
    assert bool(re.fullmatch(ID_REGEX, str(number))) == (0 < number <= MAX_ID)


@pytest.mark.parametrize("limit", [1, 9, 10, 305, 1000, 90210])
def test_decimal_at_most_is_exact(limit):
    pattern = decimal_at_most(limit)
    assert [n for n in range(0, limit * 11 + 10) if re.fullmatch(pattern, str(n))] == list(range(1, limit + 1))
    assert not re.fullmatch(pattern, "01")


def test_ids_in_paths_and_queries_carry_the_pattern(openapi):
    for label, operation in operations(openapi):
        for parameter in operation.get("parameters", []):
            if parameter["name"] in ("user_id", "tweet_id", "cursor", "since"):
                assert parameter["schema"]["pattern"] == f"^{ID_REGEX}$", (label, parameter["name"])


def test_request_bodies_state_the_rules_the_server_checks(openapi):
    schemas = openapi["components"]["schemas"]
    password = schemas["RegisterInputRequest"]["properties"]["password"]
    assert password["minLength"] == 8 and not re.search(password["pattern"], "12345678")
    tweet = openapi["paths"]["/v1/tweets"]["post"]["requestBody"]
    assert tweet["required"] is True
    assert len(tweet["content"]["application/json"]["schema"]["anyOf"]) == 2
    media = openapi["paths"]["/v1/media"]["post"]["requestBody"]
    assert media["required"] is True
    assert {s["properties"]["content_type"]["enum"][0] for s in media["content"]["application/json"]["schema"]["oneOf"]
            } == {"image/jpeg", "image/png", "image/gif", "image/webp", "video/mp4"}
    # A required text field says it may not be empty (request components of their own).
    assert schemas["TokenObtainInputRequest"]["properties"]["username"]["minLength"] == 1
    # DRF refuses NUL in text; the schema says so.
    display_name = schemas["PatchedUserUpdateInputRequest"]["properties"]["display_name"]["oneOf"][0]
    assert re.fullmatch(display_name["pattern"], "ok") and not re.fullmatch(display_name["pattern"], "a\x00b")


@pytest.mark.parametrize("path", ["/v1/timeline/home?cursor=", "/v1/timeline/home?since=",
                                  "/v1/follow-requests?cursor="])
def test_an_empty_cursor_is_refused(api, make_user, path):
    r = api(make_user())
    assert r.get(path).status_code == 400


def test_an_empty_cursor_is_refused_on_a_users_list(api, make_user):
    user = make_user()
    r = api(user).get(f"/v1/users/{user.id}/followers?cursor=")
    assert r.status_code == 400 and "cursor" in r.json()


@pytest.mark.parametrize("value", [0, 1, "true", "yes"])
def test_is_private_takes_only_json_booleans(api, make_user, value):
    r = api(make_user()).patch("/v1/users/me", {"is_private": value}, format="json")
    assert r.status_code == 400 and "is_private" in r.json()


def test_is_private_true_still_works(api, make_user):
    assert api(make_user()).patch("/v1/users/me", {"is_private": True}, format="json").json()["is_private"] is True


@pytest.mark.parametrize("path", ["/v1/users/0", "/v1/users/09", "/v1/tweets/9223372036854775808"])
def test_ids_outside_the_pattern_are_no_route(api, make_user, path):
    assert api(make_user()).get(path).status_code == 404
