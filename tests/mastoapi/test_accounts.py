"""Accounts, follows, follow requests and relationships, through the Mastodon API."""
import pytest

from tests.helpers import post

# Transactions commit, as in production: fan-out and backfills run after commit.
pytestmark = pytest.mark.django_db(transaction=True)


def test_verify_credentials_is_the_account_with_its_source(masto, make_user, api):
    user = make_user(display_name="Ada")
    post(api(user), "one")
    me = masto(user).get("/api/v1/accounts/verify_credentials").json()
    assert me["id"] == str(user.id) and me["username"] == me["acct"] == user.username
    assert me["display_name"] == "Ada" and me["locked"] is False and me["statuses_count"] == 1
    assert me["source"]["privacy"] == "public"
    for field in ("followers_count", "following_count", "created_at", "note", "avatar", "header", "url"):
        assert field in me


@pytest.mark.parametrize("fmt", ["multipart", "json"])
def test_update_credentials_changes_the_name_and_lock(masto, make_user, fmt):
    user = make_user()
    body = {"display_name": "New name", "locked": "true" if fmt == "multipart" else True}
    r = masto(user).patch("/api/v1/accounts/update_credentials", body, format=fmt)
    assert r.status_code == 200
    assert r.json()["display_name"] == "New name" and r.json()["locked"] is True
    assert masto(user).get(f"/api/v1/accounts/{user.id}").json()["locked"] is True


def test_update_credentials_refuses_bad_input(masto, make_user):
    r = masto(make_user()).patch("/api/v1/accounts/update_credentials", {"display_name": "x" * 51}, format="json")
    assert r.status_code == 422 and r.json()["error"].startswith("Validation failed: display_name")


def test_an_account_and_a_lookup(masto, make_user):
    user, other = make_user(), make_user()
    client = masto(user)
    assert client.get(f"/api/v1/accounts/{other.id}").json()["username"] == other.username
    assert client.get("/api/v1/accounts/lookup", {"acct": other.username.upper()}).json()["id"] == str(other.id)
    assert client.get("/api/v1/accounts/lookup", {"acct": f"@{other.username}@localhost"}).status_code == 200
    for acct in ("nobody", f"{other.username}@elsewhere.example", ""):
        r = client.get("/api/v1/accounts/lookup", {"acct": acct})
        assert r.status_code == 404 and r.json() == {"error": "Record not found"}
    assert client.get("/api/v1/accounts/999999999").status_code == 404


def test_follow_and_unfollow_answer_relationships(masto, make_user):
    user, other = make_user(), make_user()
    client = masto(user)
    r = client.post(f"/api/v1/accounts/{other.id}/follow")
    assert r.status_code == 200
    assert r.json()["id"] == str(other.id) and r.json()["following"] is True and r.json()["requested"] is False
    assert masto(other).get("/api/v1/accounts/relationships", {"id[]": [user.id]}).json()[0]["followed_by"] is True
    r = client.post(f"/api/v1/accounts/{other.id}/unfollow")
    assert r.json()["following"] is False


def test_following_a_private_account_is_requested_until_authorized(masto, make_user):
    user, hermit = make_user(), make_user(is_private=True)
    client, hermit_client = masto(user), masto(hermit)
    rel = client.post(f"/api/v1/accounts/{hermit.id}/follow").json()
    assert rel["requested"] is True and rel["following"] is False
    r = hermit_client.get("/api/v1/follow_requests")
    assert [a["id"] for a in r.json()] == [str(user.id)]
    rel = hermit_client.post(f"/api/v1/follow_requests/{user.id}/authorize").json()
    assert rel["followed_by"] is True and rel["requested_by"] is False
    assert client.get("/api/v1/accounts/relationships", {"id[]": hermit.id}).json()[0]["following"] is True
    rel = hermit_client.post(f"/api/v1/accounts/{user.id}/remove_from_followers").json()
    assert rel["followed_by"] is False


def test_rejecting_a_request(masto, make_user):
    user, hermit = make_user(), make_user(is_private=True)
    masto(user).post(f"/api/v1/accounts/{hermit.id}/follow")
    rel = masto(hermit).post(f"/api/v1/follow_requests/{user.id}/reject").json()
    assert rel["requested_by"] is False
    r = masto(hermit).post(f"/api/v1/follow_requests/{user.id}/reject")
    assert r.status_code == 404 and set(r.json()) == {"error"}


def test_follow_errors_are_clear(masto, make_user):
    user = make_user()
    client = masto(user)
    r = client.post(f"/api/v1/accounts/{user.id}/follow")
    assert r.status_code == 400 and set(r.json()) == {"error"}
    r = client.post("/api/v1/accounts/999999999/follow")
    assert r.status_code == 404 and set(r.json()) == {"error"}
    r = client.get("/api/v1/accounts/relationships", {"id[]": "abc"})
    assert r.status_code == 422


def test_followers_and_following_page_with_link_headers(masto, make_user):
    star = make_user()
    fans = [make_user() for _ in range(5)]
    for fan in fans:
        masto(fan).post(f"/api/v1/accounts/{star.id}/follow")
    client = masto(star)
    r = client.get(f"/api/v1/accounts/{star.id}/followers", {"limit": 2})
    seen = [a["id"] for a in r.json()]
    while 'rel="next"' in r.get("Link", ""):
        url = r["Link"].split(">")[0].lstrip("<")
        r = client.get(url)
        seen += [a["id"] for a in r.json()]
    assert seen == [str(f.id) for f in fans]
    assert [a["id"] for a in client.get(f"/api/v1/accounts/{fans[0].id}/following").json()] == [str(star.id)]


def test_a_private_accounts_lists_and_statuses_are_hidden_from_strangers(masto, make_user, api):
    hermit, stranger = make_user(is_private=True), make_user()
    post(api(hermit), "only for followers")
    client = masto(stranger)
    r = client.get(f"/api/v1/accounts/{hermit.id}/followers")
    assert r.status_code == 403 and set(r.json()) == {"error"}
    assert client.get(f"/api/v1/accounts/{hermit.id}/statuses").json() == []
    mine = masto(hermit).get(f"/api/v1/accounts/{hermit.id}/statuses").json()
    assert [s["visibility"] for s in mine] == ["private"]


def test_an_accounts_statuses_page_newest_first(masto, make_user, api):
    author, reader = make_user(), make_user()
    ids = [post(api(author), f"n{i}") for i in range(5)]
    client = masto(reader)
    r = client.get(f"/api/v1/accounts/{author.id}/statuses", {"limit": 2})
    assert [s["id"] for s in r.json()] == ids[::-1][:2]
    r = client.get(f"/api/v1/accounts/{author.id}/statuses", {"max_id": ids[3], "limit": 2})
    assert [s["id"] for s in r.json()] == [ids[2], ids[1]]
    r = client.get(f"/api/v1/accounts/{author.id}/statuses", {"min_id": ids[0], "limit": 2})
    assert [s["id"] for s in r.json()] == [ids[2], ids[1]]
    r = client.get(f"/api/v1/accounts/{author.id}/statuses", {"since_id": ids[2]})
    assert [s["id"] for s in r.json()] == [ids[4], ids[3]]
