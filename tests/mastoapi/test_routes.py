"""Every route serves the methods it declares and no other, and two answers that
once went wrong: a DELETE sent to a status's context, and a replayed
``Idempotency-Key`` whose status was deleted since (a 500, then a 404; now as /v1),
and a key reused for another request."""
import pytest
from django.urls import get_resolver, reverse
from rest_framework.test import APIClient

from tweets.models import Tweet

# Transactions commit, as in production: fan-out and backfills run after commit.
pytestmark = pytest.mark.django_db(transaction=True)


def test_delete_on_a_statuses_context_is_a_405_and_deletes_nothing(masto, make_user):
    client = masto(make_user())
    status = client.post("/api/v1/statuses", {"status": "still here"}).json()
    r = client.delete(f"/api/v1/statuses/{status['id']}/context")
    assert r.status_code == 405 and set(r.json()) == {"error"}, r.content
    assert client.get(f"/api/v1/statuses/{status['id']}").status_code == 200


def test_replaying_the_key_of_a_deleted_status_answers_it_as_posted_and_posts_nothing(masto, make_user):
    """As /v1 does: the key's post went through, so the replay says so (to its author alone)."""
    user = make_user()
    client = masto(user)
    status = client.post("/api/v1/statuses", {"status": "gone soon"}, HTTP_IDEMPOTENCY_KEY="k-del").json()
    assert client.delete(f"/api/v1/statuses/{status['id']}").status_code == 200
    r = client.post("/api/v1/statuses", {"status": "gone soon"}, HTTP_IDEMPOTENCY_KEY="k-del")
    assert r.status_code == 200 and r.headers["Idempotent-Replayed"] == "true", r.content
    assert r.json()["id"] == status["id"] and r.json()["content"] == status["content"]
    assert client.get(f"/api/v1/accounts/{user.id}/statuses").json() == []


def test_a_key_is_one_request_across_both_apis(masto, api, make_user):
    """The Mastodon API and /v1 share a user's keys: the same post replays, another is a 422."""
    author = make_user()
    first = api(author).post("/v1/tweets", {"content": "hello"}, format="json", HTTP_IDEMPOTENCY_KEY="both")
    same = masto(author).post("/api/v1/statuses", {"status": "hello"}, HTTP_IDEMPOTENCY_KEY="both")
    assert same.status_code == 200 and same.json()["id"] == first.json()["tweet_id"], same.content
    other = masto(author).post("/api/v1/statuses", {"status": "bye"}, HTTP_IDEMPOTENCY_KEY="both")
    assert other.status_code == 422 and set(other.json()) == {"error"}, other.content
    assert Tweet.objects.filter(author=author).count() == 1


def _routes():
    """(url, name, view class, the methods it declares) for every Mastodon route."""
    get_resolver().check()  # loads the root URLconf first: it registers the id converter
    from mastoapi import urls

    for pattern in urls.urlpatterns:
        callback = pattern.callback
        cls = getattr(callback, "cls", None) or callback.view_class
        declared = callback.view_initkwargs.get("http_method_names", cls.__dict__.get("http_method_names"))
        url = reverse(pattern.name, kwargs={name: 1 for name in pattern.pattern.converters})
        yield url, pattern.name, cls, declared


_ROUTES = list(_routes())
_PAGES = {"masto-authorize", "masto-authorize-slash", "masto-login", "masto-sign-up", "masto-sign-out"}  # HTML pages
_METHODS = ("get", "post", "put", "patch", "delete")


def test_every_route_declares_its_methods_and_inherits_no_routed_view():
    routed = {cls for _, _, cls, _ in _ROUTES}
    for _, name, cls, declared in _ROUTES:
        assert declared, f"{name}: {cls.__name__} declares no http_method_names of its own"
        for method in declared:
            assert method in ("head", "options") or hasattr(cls, method), f"{name} declares {method} it lacks"
        inherited = [base.__name__ for base in cls.__mro__[1:] if base in routed]
        assert not inherited, f"{cls.__name__} inherits the routed view {inherited}"


@pytest.mark.parametrize("url, name, declared", [(u, n, d) for u, n, _, d in _ROUTES],
                         ids=[n for _, n, _, _ in _ROUTES])
def test_a_method_a_route_does_not_serve_is_a_405_with_mastodons_error(masto, make_user, url, name, declared):
    user = make_user()
    client = masto(user, scope="read write follow push")
    client.force_login(user)  # the sign-in pages send a stranger to sign in, whatever the method
    for method in _METHODS:
        if method in declared:
            continue
        r = getattr(client, method)(url)
        assert r.status_code == 405, (method, url, r.status_code)
        if name not in _PAGES:
            assert set(r.json()) == {"error"} and method.upper() in r.json()["error"], (method, url, r.content)


def _assert_mastodon_error(r, *, oauth: bool = False) -> None:
    body = r.json()
    assert 400 <= r.status_code < 500 and isinstance(body.get("error"), str), (r.request["PATH_INFO"], r.content)
    allowed = {"error", "error_description"} if oauth else {"error"}
    assert set(body) <= allowed and "detail" not in body, (r.request["PATH_INFO"], body)
    if oauth:
        assert isinstance(body.get("error_description"), str), body


@pytest.mark.parametrize("url, name, declared", [(u, n, d) for u, n, _, d in _ROUTES if n not in _PAGES],
                         ids=[n for _, n, _, _ in _ROUTES if n not in _PAGES])
def test_every_bad_request_is_answered_as_mastodons_error(masto, make_user, url, name, declared):
    user = make_user()
    oauth = name in ("masto-token", "masto-revoke")
    no_token, narrow = APIClient(), masto(user, scope="read:accounts")
    for method in declared:
        if method in ("head", "options"):
            continue
        r = getattr(no_token, method)(url)
        if r.status_code >= 400:  # the routes that take no token answer their own errors
            _assert_mastodon_error(r, oauth=oauth)
        if method in ("post", "patch"):
            r = getattr(narrow, method)(url, "{not json", content_type="application/json")
            assert r.status_code in (400, 403, 404), (method, url, r.status_code)
            _assert_mastodon_error(r, oauth=oauth)  # malformed JSON too is an OAuth error there


def test_paths_under_api_that_are_no_route_are_mastodons_404(masto, make_user):
    client = masto(make_user())
    for path in ("/api/v1/no-such-thing", "/api/v1/accounts/abc", "/api/v1/statuses/0", "/api/v3/instance",
                 "/api/v1/statuses/"):
        for method in ("get", "post", "delete"):
            r = getattr(client, method)(path)
            assert r.status_code == 404 and r.json() == {"error": "Record not found"}, (method, path, r.content)


def test_a_token_without_the_scope_or_without_a_user_is_mastodons_error(masto, make_user, app_client):
    r = masto(make_user(), scope="read:accounts").post("/api/v1/statuses", {"status": "x"})
    assert r.status_code == 403
    _assert_mastodon_error(r)
    token = APIClient().post("/oauth/token", {"grant_type": "client_credentials", "scope": "read",
                                              "client_id": app_client["client_id"],
                                              "client_secret": app_client["client_secret"]}).json()["access_token"]
    app_only = APIClient()
    app_only.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    r = app_only.get("/api/v1/accounts/verify_credentials")
    assert r.status_code == 422
    _assert_mastodon_error(r)


def test_oauth_errors_carry_a_description(app_client, make_user):
    r = APIClient().post("/oauth/token", {"grant_type": "password", "client_id": app_client["client_id"],
                                          "client_secret": app_client["client_secret"],
                                          "username": make_user().username, "password": "wrong"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    _assert_mastodon_error(r, oauth=True)
    r = APIClient().post("/oauth/revoke", {"client_id": app_client["client_id"], "client_secret": "wrong",
                                           "token": "whatever"})
    _assert_mastodon_error(r, oauth=True)


def test_a_body_over_the_limit_is_mastodons_error(masto, make_user):
    r = masto(make_user()).post("/api/v1/statuses", {"status": "x" * (100 * 1024)})
    assert r.status_code == 413 and set(r.json()) == {"error"}, r.content


def test_form_fields_read_as_the_json_they_spell():
    from django.http import QueryDict
    from rest_framework import serializers

    from mastoapi.serializers import plain

    form = QueryDict("id[]=1&id[]=2&home[last_read_id]=5&home[version]=3&a[b][c][]=x&name=first&name=last")
    assert plain(form) == {"id": ["1", "2"], "home": {"last_read_id": "5", "version": "3"},
                           "a": {"b": {"c": ["x"]}}, "name": "last"}
    json_body = {"id": [1, 2]}
    assert plain(json_body) is json_body
    for clash in ("a=1&a[b]=2", "a[]=1&a=2", "a[][b]=1"):
        with pytest.raises(serializers.ValidationError):
            plain(QueryDict(clash))


@pytest.mark.parametrize("fmt", ["form", "json"])
def test_a_status_and_a_registration_read_forms_and_json_alike(masto, make_user, fmt):
    user, friend = make_user(), make_user()
    client = masto(user)
    kw = {"format": "json"} if fmt == "json" else {}
    uris = ["https://a.example/cb", "myapp://cb"]
    r = APIClient().post("/api/v1/apps", {"client_name": "two", "scopes": "read write",
                                          ("redirect_uris" if fmt == "json" else "redirect_uris[]"): uris}, **kw)
    assert r.status_code == 200 and r.json()["redirect_uris"] == ["https://a.example/cb", "myapp://cb"], r.content
    client.post(f"/api/v1/accounts/{friend.id}/follow")
    r = client.get("/api/v1/accounts/relationships", {"id[]": [friend.id, user.id]})
    assert [rel["id"] for rel in r.json()] == [str(friend.id), str(user.id)] and r.json()[0]["following"]
    assert client.get("/api/v1/accounts/relationships", {"id": friend.id}).json()[0]["id"] == str(friend.id)
    body = {"status": "hello", "visibility": "unlisted", "sensitive": "false" if fmt == "form" else False,
            "spoiler_text": ""}
    r = client.post("/api/v1/statuses", body, **kw)
    assert r.status_code == 200 and r.json()["content"] == "<p>hello</p>", r.content
    r = client.post("/api/v1/statuses", {**body, "visibility": "everyone"}, **kw)
    assert r.status_code == 422 and r.json()["error"].startswith("Validation failed: visibility")
    r = client.post("/api/v1/statuses", {"status": "x", "poll": {"options": ["a", "b"], "expires_in": 60}}
                    if fmt == "json" else {"status": "x", "poll[options][]": ["a", "b"], "poll[expires_in]": "60"},
                    **kw)
    assert r.status_code == 422 and r.json() == {"error": "poll is not supported by this server."}
