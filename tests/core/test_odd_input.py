"""Odd bodies and parameters on every write endpoint: always an answer below 500."""
import pytest

from social import selectors

pytestmark = pytest.mark.django_db(transaction=True)

BODIES = ['null', '"x"', '123', '[]', '{"content": null}', '{"content": {"a": 1}}', '{"content": "\\ud800"}',
          '{"content": "a\\u0000b"}', '{"content": NaN}', '{"username": "\\ud800", "password": "x"}',
          '{"username": "a\\u0000", "password": "x"}', '{"username": "ſ", "password": "x"}',
          '{"display_name": "\\u0000"}', '{"is_private": null}', '{"refresh": "\\u0000"}', '{"refresh": 5}']
PATHS = [("post", "/v1/tweets"), ("post", "/v1/auth/register"), ("post", "/v1/auth/token"),
         ("post", "/v1/auth/token/refresh"), ("patch", "/v1/users/me")]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("method,path", PATHS)
def test_odd_bodies_are_never_a_500(make_user, api, method, path, body):
    c = api(make_user())
    c.raise_request_exception = False
    r = getattr(c, method)(path, data=body, content_type="application/json")
    assert r.status_code < 500, (r.status_code, r.content[:200])


@pytest.mark.parametrize("url", ["/v1/users/0", "/v1/users/9223372036854775807/followers?cursor=%00",
                                 "/v1/timeline/home?cursor=%C0%80", "/v1/timeline/home?limit=%00",
                                 "/v1/tweets/9223372036854775807",
                                 "/v1/users/1/following?limit=99999999999999999999999"])
def test_odd_parameters_are_never_a_500(make_user, api, url):
    c = api(make_user())
    c.raise_request_exception = False
    r = c.get(url)
    assert r.status_code < 500, (r.status_code, r.content[:200])


def test_a_crash_answers_json_in_the_shape_of_every_error(make_user, api, monkeypatch):
    def crash(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(selectors, "user_get", crash)
    client = api(make_user())
    client.raise_request_exception = False
    r = client.get("/v1/users/1")
    assert r.status_code == 500
    assert r["Content-Type"] == "application/json"
    assert r.json() == {"detail": "Server error."}


def test_a_page_parameter_given_twice_is_a_400(make_user, api):
    client = api(make_user())
    for path in ("/v1/timeline/home", "/v1/follow-requests"):
        r = client.get(f"{path}?limit=5&limit=")
        assert r.status_code == 400 and r.json()["limit"] == ["Give this parameter once."]
