"""A warm Mastodon home page costs no SQL query, as ``/v1``'s does: the OAuth token is found in
Redis, the reader is checked in the author cache, and the accounts of the page come from there too.
What is cached must not outlive what it copies: a revoked token, a suspended user, a follow count."""
import hashlib
import threading

import pytest
from django.conf import settings
from django.db import connection, connections
from django.test import Client, RequestFactory
from oauth2_provider.models import get_access_token_model
from rest_framework.test import APIClient

from core import throttling
from mastoapi import tokens
from social import services as social_services
from social.models import User
from tests.factories import PASSWORD
from tests.helpers import post, redis_round_trips
from tests.mastoapi.conftest import password_token

pytestmark = pytest.mark.django_db(transaction=True)  # caches are refreshed once changes commit


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client



def test_a_warm_mastodon_home_page_costs_no_query(app_client, make_user, api, monkeypatch,
                                                  django_assert_num_queries):
    reader, author, mentioned = make_user(), make_user(), make_user()
    social_services.follow_create(follower=reader, followee_id=author.id)
    post(api(author), f"hello @{mentioned.username} #tag")
    post(api(author), "and again")
    client = bearer(password_token(app_client, reader))
    first = client.get("/api/v1/timelines/home")
    assert first.status_code == 200
    client.get("/api/v1/timelines/home")  # the token, the page and its accounts are all cached now
    sent = redis_round_trips(monkeypatch)
    with django_assert_num_queries(0):
        warm = client.get("/api/v1/timelines/home")
    assert warm.status_code == 200 and warm.json() == first.json()
    statuses = warm.json()
    assert [s["account"]["id"] for s in statuses] == [str(author.id)] * 2
    assert statuses[0]["account"]["followers_count"] == 1 and statuses[0]["account"]["following_count"] == 0
    assert statuses[1]["mentions"] == [{"id": str(mentioned.id), "username": mentioned.username,
                                        "url": f"http://testserver/@{mentioned.username}",
                                        "acct": mentioned.username}]
    # The reader's author-cache entry with the rate limit, the cached timeline (the view's declared
    # first reads, with the page's tweets on one server) and the token's GET (the process recalls what
    # it grants, and the trip confirms it); the mentioned names; the authors and the mentioned users.
    assert len(sent) == 3


def test_a_token_is_cached_under_its_checksum_with_what_it_grants(app_client, make_user, redis):
    user = make_user()
    token = password_token(app_client, user, "read write")
    assert bearer(token).get("/api/v1/timelines/home").status_code == 200
    cached = redis.get(f"{settings.REDIS_KEY_PREFIX}tok:{hashlib.sha256(token.encode()).hexdigest()}")
    assert cached is not None and b'"user":%d' % user.id in cached and b'"scopes":"read write"' in cached


@pytest.mark.parametrize("path", ["/api/v1/timelines/home", "/api/v1/accounts/verify_credentials"])
def test_a_revoked_token_is_refused_though_it_was_cached(app_client, make_user, path):
    token = password_token(app_client, make_user())
    assert bearer(token).get(path).status_code == 200
    r = APIClient().post("/oauth/revoke", {"client_id": app_client["client_id"],
                                           "client_secret": app_client["client_secret"], "token": token})
    assert r.status_code == 200
    r = bearer(token).get(path)
    assert r.status_code == 401 and r.json() == {"error": "The access token is invalid"}


def test_a_token_row_that_changes_is_looked_up_again(app_client, make_user):
    """Scopes narrowed on the stored row take effect at once; a row given another value (as
    django-oauth-toolkit does on a refresh that does not rotate) no longer answers the old one."""
    token = password_token(app_client, make_user(), "read write")
    client = bearer(token)
    assert client.get("/api/v1/timelines/home").status_code == 200
    row = get_access_token_model().objects.get(token_checksum=hashlib.sha256(token.encode()).hexdigest())
    row.scope = "write"
    row.save()
    r = client.get("/api/v1/timelines/home")
    assert r.status_code == 403 and r.json() == {"error": "This action is outside the authorized scopes"}
    row.scope = "read"
    row.token_checksum = hashlib.sha256(b"anothervalue").hexdigest()
    row.save()
    assert client.get("/api/v1/timelines/home").status_code == 401
    assert bearer("anothervalue").get("/api/v1/timelines/home").status_code == 200


def test_a_lookup_that_read_a_token_row_before_it_changed_does_not_cache_the_old_grant(app_client, make_user):
    """The lookup reads the row, the row's scopes are narrowed and committed, then the lookup
    fills the cache: the narrowed scopes stand."""
    token = password_token(app_client, make_user(), "read write")
    checksum = hashlib.sha256(token.encode()).hexdigest()
    changed = threading.Event()

    def narrow():
        try:
            row = get_access_token_model().objects.get(token_checksum=checksum)
            row.scope = "write"
            row.save()
        finally:
            connections.close_all()
        changed.set()

    def wrapper(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "oauth2_provider_accesstoken" in sql and sql.lstrip().startswith("SELECT") and not changed.is_set():
            t = threading.Thread(target=narrow)
            t.start()
            t.join()
        return result

    with connection.execute_wrapper(wrapper):
        found, _ = tokens.lookup(RequestFactory().get("/api/v1/timelines/home"), token)
    assert changed.is_set() and found is not None and found.scopes == {"read", "write"}  # as read

    r = bearer(token).get("/api/v1/timelines/home")
    assert r.status_code == 403 and r.json() == {"error": "This action is outside the authorized scopes"}


@pytest.mark.parametrize("path", ["/api/v1/timelines/home", "/api/v1/accounts/verify_credentials"])
def test_a_suspended_users_cached_token_is_refused(app_client, make_user, path):
    """Deactivated behind the services' back (plain SQL revokes no token): the token cache holds
    no active flag, so the user's row or the author cache refuses it."""
    user = make_user()
    token = password_token(app_client, user)
    assert bearer(token).get(path).status_code == 200
    User.objects.filter(id=user.id).update(is_active=False)
    social_services.account_changes_replay()  # the trigger logged it: the author cache learns it
    r = bearer(token).get(path)
    assert r.status_code == 401 and r.json() == {"error": "Your login is currently disabled"}


@pytest.mark.parametrize("path", ["/api/v1/timelines/home", "/api/v1/accounts/verify_credentials"])
def test_a_suspension_revokes_the_users_cached_token(app_client, make_user, path):
    user = make_user()
    token = password_token(app_client, user)
    assert bearer(token).get(path).status_code == 200
    social_services.user_suspend(user_id=user.id)
    r = bearer(token).get(path)
    assert r.status_code == 401 and r.json() == {"error": "The access token is invalid"}


def test_follow_counts_on_a_status_follow_the_graph(app_client, make_user, api):
    reader, author, other = make_user(), make_user(), make_user()
    social_services.follow_create(follower=reader, followee_id=author.id)
    post(api(author), "hello")
    client = bearer(password_token(app_client, reader))
    assert client.get("/api/v1/timelines/home").json()[0]["account"]["followers_count"] == 1
    social_services.follow_create(follower=other, followee_id=author.id)
    assert client.get("/api/v1/timelines/home").json()[0]["account"]["followers_count"] == 2
    social_services.follow_delete(follower=reader, followee_id=author.id)
    social_services.follow_create(follower=reader, followee_id=author.id)
    assert client.get("/api/v1/timelines/home").json()[0]["account"]["followers_count"] == 2


def test_a_mention_of_a_renamed_user_is_linked_by_the_new_name_only(app_client, make_user, api):
    reader, author, mentioned = make_user(), make_user(), make_user(username="firstname")
    social_services.follow_create(follower=reader, followee_id=author.id)
    post(api(author), "hello @firstname")
    client = bearer(password_token(app_client, reader))
    assert client.get("/api/v1/timelines/home").json()[0]["mentions"][0]["id"] == str(mentioned.id)
    mentioned.username = "renamed"
    mentioned.save(update_fields=["username"])
    social_services.authors_cache_refresh(users=[mentioned])
    post(api(author), "hello @Renamed")
    statuses = client.get("/api/v1/timelines/home").json()
    assert statuses[0]["mentions"][0]["id"] == str(mentioned.id) and statuses[1]["mentions"] == []


def test_the_sign_in_form_and_the_token_endpoint_share_one_login_limit(app_client, make_user, settings):
    settings.RATE_LIMIT_LOGIN = "2/min"
    user = make_user()
    browser = Client()
    assert browser.post("/oauth/login", {"username": user.username.upper(), "password": "wrong"}).status_code == 200
    body = {"grant_type": "password", "client_id": app_client["client_id"],
            "client_secret": app_client["client_secret"], "username": user.username, "password": PASSWORD}
    assert APIClient(REMOTE_ADDR="10.0.0.9").post("/oauth/token", body).status_code == 200
    # Both counted against the same username, however it was cased, from two addresses.
    assert APIClient(REMOTE_ADDR="10.0.0.8").post("/oauth/token", body).status_code == 429
    assert throttling.who_for("login", ip="1.2.3.4", username="Bob") == throttling.who_for(
        "login", ip="1.2.3.4", username="bob")


def _recalled(client: APIClient) -> None:
    """Two pages: the first looks the token up (and fills the cache), the second finds it cached
    and so this process recalls it; the pages after that confirm it in their first round trip."""
    for _ in range(2):
        assert client.get("/api/v1/timelines/home").status_code == 200


def _checksum(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def test_a_recalled_token_is_refused_once_revoked(app_client, make_user):
    token = password_token(app_client, make_user())
    client = bearer(token)
    _recalled(client)
    assert tokens.recall(token) is not None
    r = APIClient().post("/oauth/revoke", {"client_id": app_client["client_id"],
                                           "client_secret": app_client["client_secret"], "token": token})
    assert r.status_code == 200
    r = client.get("/api/v1/timelines/home")
    assert r.status_code == 401 and r.json() == {"error": "The access token is invalid"}
    assert tokens.recall(token) is None  # forgotten: the next request looks it up (and is refused)
    assert client.get("/api/v1/timelines/home").status_code == 401


def test_a_recalled_tokens_scopes_follow_its_row(app_client, make_user):
    """Narrowed: refused (403) in the same request that sees the change; widened again: admitted,
    though the process recalled the narrow scopes (those refusing, the token is looked up)."""
    token = password_token(app_client, make_user(), "read write")
    client = bearer(token)
    _recalled(client)
    row = get_access_token_model().objects.get(token_checksum=_checksum(token))
    row.scope = "write"
    row.save()
    r = client.get("/api/v1/timelines/home")
    assert r.status_code == 403 and r.json() == {"error": "This action is outside the authorized scopes"}
    assert client.get("/api/v1/timelines/home").status_code == 403
    assert tokens.recall(token).token.scopes == {"write"}
    row.scope = "read"
    row.save()
    assert client.get("/api/v1/timelines/home").status_code == 200


def test_a_recalled_token_whose_entry_is_gone_is_looked_up_again(app_client, make_user, redis, monkeypatch):
    """The entry expired (or was dropped): the trip reads nothing, and django-oauth-toolkit is asked."""
    token = password_token(app_client, make_user())
    client = bearer(token)
    _recalled(client)
    redis.delete(f"{settings.REDIS_KEY_PREFIX}tok:{_checksum(token)}")
    assert client.get("/api/v1/timelines/home").status_code == 200
    assert redis.get(f"{settings.REDIS_KEY_PREFIX}tok:{_checksum(token)}") is not None  # filled again
    get_access_token_model().objects.filter(token_checksum=_checksum(token)).delete()
    r = client.get("/api/v1/timelines/home")
    assert r.status_code == 401 and r.json() == {"error": "The access token is invalid"}


def test_a_recalled_tokens_suspended_user_is_refused(app_client, make_user):
    user = make_user()
    token = password_token(app_client, user)
    client = bearer(token)
    _recalled(client)
    social_services.user_suspend(user_id=user.id)
    r = client.get("/api/v1/timelines/home")
    assert r.status_code == 401 and r.json() == {"error": "The access token is invalid"}


def test_a_recalled_token_with_redis_down_is_checked_in_postgresql(app_client, make_user, redis_down):
    redis_down(False)
    token = password_token(app_client, make_user())
    client = bearer(token)
    _recalled(client)
    redis_down(True)
    assert client.get("/api/v1/timelines/home").status_code == 200
    get_access_token_model().objects.filter(token_checksum=_checksum(token)).delete()
    r = client.get("/api/v1/timelines/home")
    assert r.status_code == 401 and r.json() == {"error": "The access token is invalid"}


def test_a_remembered_statuss_html_follows_its_mentions_and_host(app_client, make_user, api):
    """The HTML of a status is remembered by the process, never past what it depends on: a
    mentioned user renamed, or suspended, and the host the page is read through."""
    reader, author, mentioned = make_user(), make_user(), make_user(username="shown")
    social_services.follow_create(follower=reader, followee_id=author.id)
    post(api(author), "hi @shown #tag")
    client = bearer(password_token(app_client, reader))

    def content(host: str = "testserver") -> list[str]:
        return [s["content"] for s in client.get("/api/v1/timelines/home", HTTP_HOST=host).json()]

    [linked] = content()
    assert content() == [linked] and 'href="http://testserver/@shown"' in linked and "#<span>tag</span>" in linked
    assert 'href="http://localhost/@shown"' in content("localhost")[0]
    mentioned.username = "renamed"
    mentioned.save(update_fields=["username"])
    social_services.authors_cache_refresh(users=[mentioned])
    post(api(author), "hey @renamed")
    again, first = content()
    assert "u-url mention" not in first and "@shown" in first  # names no one now: left as text
    assert 'href="http://testserver/@renamed"' in again
    social_services.user_suspend(user_id=mentioned.id)
    assert all("u-url mention" not in html for html in content())


def test_statuses_of_one_author_share_an_account_that_follows_the_graph(app_client, make_user, api):
    reader, author, other = make_user(), make_user(), make_user()
    social_services.follow_create(follower=reader, followee_id=author.id)
    post(api(author), "one")
    post(api(author), "two")
    client = bearer(password_token(app_client, reader))
    statuses = client.get("/api/v1/timelines/home").json()
    assert statuses[0]["account"] == statuses[1]["account"] and statuses[0]["account"]["followers_count"] == 1
    social_services.follow_create(follower=other, followee_id=author.id)
    statuses = client.get("/api/v1/timelines/home").json()
    assert [s["account"]["followers_count"] for s in statuses] == [2, 2]
    social_services.user_update(user=User.objects.get(id=author.id), display_name="Renamed", is_private=True)
    statuses = client.get("/api/v1/timelines/home").json()
    assert [(s["account"]["display_name"], s["account"]["locked"], s["visibility"]) for s in statuses] == [
        ("Renamed", True, "private")] * 2
