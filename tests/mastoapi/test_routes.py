"""Every route serves the methods it declares and no other, and two answers that
once went wrong: a DELETE sent to a status's context, and a replayed
``Idempotency-Key`` whose status was deleted since."""
import pytest
from django.urls import get_resolver, reverse

# Transactions commit, as in production: fan-out and backfills run after commit.
pytestmark = pytest.mark.django_db(transaction=True)


def test_delete_on_a_statuses_context_is_a_405_and_deletes_nothing(masto, make_user):
    client = masto(make_user())
    status = client.post("/api/v1/statuses", {"status": "still here"}).json()
    r = client.delete(f"/api/v1/statuses/{status['id']}/context")
    assert r.status_code == 405 and set(r.json()) == {"error"}, r.content
    assert client.get(f"/api/v1/statuses/{status['id']}").status_code == 200


def test_replaying_the_key_of_a_deleted_status_is_a_404_and_posts_nothing(masto, make_user):
    user = make_user()
    client = masto(user)
    status = client.post("/api/v1/statuses", {"status": "gone soon"}, HTTP_IDEMPOTENCY_KEY="k-del").json()
    assert client.delete(f"/api/v1/statuses/{status['id']}").status_code == 200
    r = client.post("/api/v1/statuses", {"status": "gone soon"}, HTTP_IDEMPOTENCY_KEY="k-del")
    assert r.status_code == 404 and r.json() == {"error": "Record not found"}, r.content
    assert client.get(f"/api/v1/accounts/{user.id}/statuses").json() == []


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
_PAGES = {"masto-authorize", "masto-login"}  # HTML pages, not API routes
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
