"""The follow graph through the HTTP API: follow, unfollow, requests, lists, counts (SPEC §3, §5)."""
import pytest

from social import services as social_services
from social.models import User
from tests.conftest import client_for
from tests.helpers import run_concurrently

pytestmark = pytest.mark.django_db

ME = "/v1/users/me"
REQUESTS = "/v1/follow-requests"


def follow(client, user):
    return client.post(f"/v1/users/{user.id}/follow")


def unfollow(client, user):
    return client.delete(f"/v1/users/{user.id}/follow")


def counts(user) -> tuple[int, int]:
    """(followers_count, following_count) as the API reports them."""
    body = client_for(user).get(f"/v1/users/{user.id}").json()
    return body["followers_count"], body["following_count"]


def user_ids(page) -> list[str]:
    return [u["user_id"] for u in page["data"]]


def walk(client, path, limit):
    """Follow ``next_cursor`` to the end; return (pages, every user id in order)."""
    pages, cursor = [], None
    while True:
        params = {"limit": limit} | ({"cursor": cursor} if cursor is not None else {})
        r = client.get(path, params)
        assert r.status_code == 200, r.content
        pages.append(r.json())
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
        assert len(pages) < 100, "next_cursor never became null"
    return pages, [uid for page in pages for uid in user_ids(page)]


# --- follow / unfollow -------------------------------------------------------------


def test_follow_public_user_updates_both_counts(api, make_user):
    alice, bob = make_user(), make_user()

    r = follow(api(bob), alice)

    assert r.status_code == 200, r.content
    assert r.json() == {"following": True, "status": "following"}
    assert counts(alice) == (1, 0)
    assert counts(bob) == (0, 1)


def test_follow_twice_is_idempotent(api, make_user):
    alice, bob = make_user(), make_user()
    client = api(bob)
    follow(client, alice)

    r = follow(client, alice)

    assert r.status_code == 200
    assert r.json() == {"following": True, "status": "following"}
    assert counts(alice) == (1, 0)
    assert counts(bob) == (0, 1)


def test_unfollow_restores_counts_and_is_idempotent(api, make_user):
    alice, bob = make_user(), make_user()
    client = api(bob)
    follow(client, alice)

    r = unfollow(client, alice)
    assert r.status_code == 200
    assert r.json() == {"following": False}
    assert counts(alice) == (0, 0)
    assert counts(bob) == (0, 0)

    r = unfollow(client, alice)
    assert r.status_code == 200
    assert r.json() == {"following": False}
    assert counts(alice) == (0, 0)
    assert counts(bob) == (0, 0)


def test_unfollow_someone_never_followed_is_200_and_changes_nothing(api, make_user):
    alice, bob, carol = make_user(), make_user(), make_user()
    follow(api(carol), alice)

    r = unfollow(api(bob), alice)

    assert r.status_code == 200
    assert r.json() == {"following": False}
    assert counts(alice) == (1, 0)
    assert counts(bob) == (0, 0)


def test_refollow_after_unfollow_counts_once(api, make_user):
    alice, bob = make_user(), make_user()
    client = api(bob)
    for _ in range(3):
        follow(client, alice)
        unfollow(client, alice)
    follow(client, alice)

    assert counts(alice) == (1, 0)
    assert counts(bob) == (0, 1)


def test_mutual_follow_counts(api, make_user):
    alice, bob = make_user(), make_user()
    follow(api(alice), bob)
    follow(api(bob), alice)

    assert counts(alice) == (1, 1)
    assert counts(bob) == (1, 1)


def test_follow_self_is_400(api, make_user):
    alice = make_user()

    r = follow(api(alice), alice)

    assert r.status_code == 400
    assert "detail" in r.json()
    assert counts(alice) == (0, 0)


def test_unfollow_self_is_harmless(api, make_user):
    alice = make_user()

    r = unfollow(api(alice), alice)

    assert r.status_code in (200, 400)
    assert counts(alice) == (0, 0)


def test_follow_unknown_user_is_404(api, make_user):
    bob = make_user()
    unknown = User.objects.order_by("-id").values_list("id", flat=True).first() + 1000

    r = api(bob).post(f"/v1/users/{unknown}/follow")

    assert r.status_code == 404
    assert counts(bob) == (0, 0)


@pytest.mark.parametrize("raw_id", ["abc", "12345678901234567890", str(2**63), str(2**63 - 1)])
def test_follow_malformed_or_huge_id_is_404(api, make_user, raw_id):
    bob = make_user()

    assert api(bob).post(f"/v1/users/{raw_id}/follow").status_code == 404
    assert api(bob).delete(f"/v1/users/{raw_id}/follow").status_code in (200, 404)


def test_follow_suspended_user_is_404(api, make_user):
    alice, bob = make_user(), make_user()
    social_services.user_suspend(user_id=alice.id)

    assert follow(api(bob), alice).status_code == 404


def test_follow_requires_auth(anon, make_user):
    alice = make_user()

    assert anon.post(f"/v1/users/{alice.id}/follow").status_code == 401
    assert anon.delete(f"/v1/users/{alice.id}/follow").status_code == 401
    assert counts(alice) == (0, 0)


# --- private accounts and follow requests -------------------------------------------------


def test_follow_private_user_creates_a_request_without_counting(api, make_user):
    alice, bob = make_user(is_private=True), make_user(username="bob")

    r = follow(api(bob), alice)

    assert r.status_code == 200
    assert r.json() == {"following": False, "status": "requested"}
    assert counts(alice) == (0, 0)
    assert counts(bob) == (0, 0)
    pending = api(alice).get(REQUESTS)
    assert pending.status_code == 200
    assert pending.json() == {
        "data": [{
            "user_id": str(bob.id),
            "username": "bob",
            "display_name": bob.display_name,
            "is_private": False,
            "followers_count": 0,
            "following_count": 0,
        }],
        "next_cursor": None,
    }
    assert api(alice).get(f"/v1/users/{alice.id}/followers").json()["data"] == []
    assert api(bob).get(f"/v1/users/{bob.id}/following").json()["data"] == []


def test_follow_request_twice_stays_one_request(api, make_user):
    alice, bob = make_user(is_private=True), make_user()
    client = api(bob)
    follow(client, alice)

    r = follow(client, alice)

    assert r.json() == {"following": False, "status": "requested"}
    assert user_ids(api(alice).get(REQUESTS).json()) == [str(bob.id)]


def test_follow_requests_are_only_the_followees_own(api, make_user):
    alice, carol, bob = make_user(is_private=True), make_user(is_private=True), make_user()
    follow(api(bob), alice)

    assert api(carol).get(REQUESTS).json() == {"data": [], "next_cursor": None}
    assert api(bob).get(REQUESTS).json() == {"data": [], "next_cursor": None}


def test_approve_request_updates_counts_and_followers_list(api, make_user):
    alice, bob = make_user(is_private=True), make_user()
    follow(api(bob), alice)

    r = api(alice).post(f"{REQUESTS}/{bob.id}/approve")

    assert r.status_code == 200, r.content
    assert counts(alice) == (1, 0)
    assert counts(bob) == (0, 1)
    assert user_ids(api(alice).get(f"/v1/users/{alice.id}/followers").json()) == [str(bob.id)]
    assert user_ids(api(bob).get(f"/v1/users/{bob.id}/following").json()) == [str(alice.id)]
    assert api(alice).get(REQUESTS).json()["data"] == []
    assert follow(api(bob), alice).json() == {"following": True, "status": "following"}
    assert counts(alice) == (1, 0)


def test_approve_twice_is_404_and_counts_once(api, make_user):
    alice, bob = make_user(is_private=True), make_user()
    follow(api(bob), alice)
    api(alice).post(f"{REQUESTS}/{bob.id}/approve")

    r = api(alice).post(f"{REQUESTS}/{bob.id}/approve")

    assert r.status_code == 404
    assert counts(alice) == (1, 0)


def test_reject_request_removes_it_without_counting(api, make_user):
    alice, bob = make_user(is_private=True), make_user()
    follow(api(bob), alice)

    r = api(alice).post(f"{REQUESTS}/{bob.id}/reject")

    assert r.status_code == 200, r.content
    assert api(alice).get(REQUESTS).json()["data"] == []
    assert counts(alice) == (0, 0)
    assert counts(bob) == (0, 0)
    assert api(alice).get(f"/v1/users/{alice.id}/followers").json()["data"] == []
    # bob may ask again
    assert follow(api(bob), alice).json() == {"following": False, "status": "requested"}


def test_unfollow_withdraws_a_pending_request(api, make_user):
    alice, bob = make_user(is_private=True), make_user()
    follow(api(bob), alice)

    r = unfollow(api(bob), alice)

    assert r.json() == {"following": False}
    assert api(alice).get(REQUESTS).json()["data"] == []
    assert counts(alice) == (0, 0)
    assert counts(bob) == (0, 0)
    assert api(alice).post(f"{REQUESTS}/{bob.id}/approve").status_code == 404


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_approve_or_reject_with_nothing_pending_is_404(api, make_user, action):
    alice, bob = make_user(is_private=True), make_user()

    r = api(alice).post(f"{REQUESTS}/{bob.id}/{action}")

    assert r.status_code == 404
    assert counts(alice) == (0, 0)


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_approve_or_reject_an_accepted_follow_is_404_and_keeps_it(api, make_user, action):
    alice, bob = make_user(), make_user()
    follow(api(bob), alice)

    r = api(alice).post(f"{REQUESTS}/{bob.id}/{action}")

    assert r.status_code == 404
    assert counts(alice) == (1, 0)


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_only_the_followee_can_approve_or_reject(api, make_user, action):
    alice, bob, mallory = make_user(is_private=True), make_user(), make_user()
    follow(api(bob), alice)

    r = api(mallory).post(f"{REQUESTS}/{bob.id}/{action}")

    assert r.status_code == 404
    assert user_ids(api(alice).get(REQUESTS).json()) == [str(bob.id)]
    assert counts(alice) == (0, 0)


@pytest.mark.parametrize("action", ["approve", "reject"])
@pytest.mark.parametrize("raw_id", ["abc", "12345678901234567890", str(2**63), str(2**63 - 1)])
def test_approve_or_reject_malformed_id_is_404(api, make_user, action, raw_id):
    alice = make_user(is_private=True)

    assert api(alice).post(f"{REQUESTS}/{raw_id}/{action}").status_code == 404


def test_follow_requests_require_auth(anon, make_user):
    bob = make_user()

    assert anon.get(REQUESTS).status_code == 401
    assert anon.post(f"{REQUESTS}/{bob.id}/approve").status_code == 401


def test_going_public_accepts_pending_requests(api, make_user):
    alice = make_user(is_private=True)
    requesters = [make_user() for _ in range(3)]
    for user in requesters:
        follow(api(user), alice)

    r = api(alice).patch(ME, {"is_private": False}, format="json")

    assert r.status_code == 200
    assert r.json()["is_private"] is False
    assert r.json()["followers_count"] == 3
    assert counts(alice) == (3, 0)
    assert all(counts(user) == (0, 1) for user in requesters)
    assert api(alice).get(REQUESTS).json()["data"] == []
    assert user_ids(api(alice).get(f"/v1/users/{alice.id}/followers").json()) == sorted(
        (str(u.id) for u in requesters), key=int
    )


def test_going_private_keeps_existing_followers_and_gates_new_ones(api, make_user):
    alice, bob, carol = make_user(), make_user(), make_user()
    follow(api(bob), alice)

    api(alice).patch(ME, {"is_private": True}, format="json")

    assert counts(alice) == (1, 0)
    assert follow(api(bob), alice).json() == {"following": True, "status": "following"}
    assert follow(api(carol), alice).json() == {"following": False, "status": "requested"}
    assert counts(alice) == (1, 0)


# --- followers / following lists ------------------------------------------------------------


def test_followers_paged_in_ascending_id_order_each_exactly_once(api, make_user):
    alice = make_user()
    followers = [make_user() for _ in range(7)]
    for user in reversed(followers):  # follow order must not matter
        follow(api(user), alice)
    expected = sorted((str(u.id) for u in followers), key=int)

    pages, ids = walk(api(alice), f"/v1/users/{alice.id}/followers", limit=3)

    assert [len(p["data"]) for p in pages] == [3, 3, 1]
    assert ids == expected
    assert [p["next_cursor"] for p in pages[:-1]] == [ids[2], ids[5]]
    assert all(isinstance(p["next_cursor"], str) for p in pages[:-1])
    assert pages[-1]["next_cursor"] is None
    assert set(pages[0]) == {"data", "next_cursor"}
    assert set(pages[0]["data"][0]) == {
        "user_id", "username", "display_name", "is_private", "followers_count", "following_count"
    }


def test_followers_next_cursor_is_null_on_a_full_last_page(api, make_user):
    alice = make_user()
    for _ in range(6):
        follow(api(make_user()), alice)

    pages, ids = walk(api(alice), f"/v1/users/{alice.id}/followers", limit=3)

    assert [len(p["data"]) for p in pages] == [3, 3]
    assert pages[0]["next_cursor"] is not None
    assert pages[1]["next_cursor"] is None
    assert len(set(ids)) == 6


def test_following_paged_in_ascending_id_order(api, make_user):
    bob = make_user()
    followees = [make_user() for _ in range(5)]
    for user in followees:
        follow(api(bob), user)

    pages, ids = walk(api(make_user()), f"/v1/users/{bob.id}/following", limit=2)

    assert [len(p["data"]) for p in pages] == [2, 2, 1]
    assert ids == sorted((str(u.id) for u in followees), key=int)


def test_lists_default_limit_is_20_and_max_is_100(api, make_user):
    alice = make_user()
    for _ in range(21):
        follow(api(make_user()), alice)
    client = api(alice)

    first = client.get(f"/v1/users/{alice.id}/followers").json()
    assert len(first["data"]) == 20
    assert first["next_cursor"] is not None

    everything = client.get(f"/v1/users/{alice.id}/followers", {"limit": 100}).json()
    assert len(everything["data"]) == 21
    assert everything["next_cursor"] is None


def test_followers_list_omits_unfollowed_and_shows_live_counts(api, make_user):
    alice, bob, carol = make_user(), make_user(), make_user()
    follow(api(bob), alice)
    follow(api(carol), alice)
    unfollow(api(bob), alice)

    page = api(alice).get(f"/v1/users/{alice.id}/followers").json()

    assert page == {"data": [client_for(carol).get(ME).json()], "next_cursor": None}
    assert page["data"][0]["following_count"] == 1


def test_empty_lists(api, make_user):
    alice = make_user()
    client = api(alice)

    assert client.get(f"/v1/users/{alice.id}/followers").json() == {"data": [], "next_cursor": None}
    assert client.get(f"/v1/users/{alice.id}/following").json() == {"data": [], "next_cursor": None}


def test_cursor_past_the_end_gives_an_empty_last_page(api, make_user):
    alice = make_user()
    follow(api(make_user()), alice)

    r = api(alice).get(f"/v1/users/{alice.id}/followers", {"cursor": str(2**63 - 1)})

    assert r.status_code == 200
    assert r.json() == {"data": [], "next_cursor": None}


@pytest.mark.parametrize("which", ["followers", "following"])
def test_lists_of_unknown_user_are_404(api, make_user, which):
    alice = make_user()
    unknown = User.objects.order_by("-id").values_list("id", flat=True).first() + 1000

    assert api(alice).get(f"/v1/users/{unknown}/{which}").status_code == 404


@pytest.mark.parametrize("which", ["followers", "following"])
def test_lists_require_auth(anon, make_user, which):
    alice = make_user()

    assert anon.get(f"/v1/users/{alice.id}/{which}").status_code == 401


LIST_PATHS = ["/v1/users/{id}/followers", "/v1/users/{id}/following", REQUESTS]


@pytest.mark.parametrize("path", LIST_PATHS, ids=["followers", "following", "requests"])
@pytest.mark.parametrize("limit", ["0", "101", "abc", "-1", "1.5", "1e2", str(2**64)])
def test_lists_bad_limit_is_400(api, make_user, path, limit):
    alice = make_user()

    r = api(alice).get(path.format(id=alice.id), {"limit": limit})

    assert r.status_code == 400, r.content
    assert "limit" in r.json()


@pytest.mark.parametrize("path", LIST_PATHS, ids=["followers", "following", "requests"])
@pytest.mark.parametrize(
    "cursor",
    ["abc", "-5", "1.5", "12345678901234567890", str(2**63), "0", "1 2", "١٢"],
    ids=["alpha", "negative", "decimal", "20-digits", "2^63", "zero", "space", "non-ascii-digits"],
)
def test_lists_bad_cursor_is_400(api, make_user, path, cursor):
    alice = make_user()

    r = api(alice).get(path.format(id=alice.id), {"cursor": cursor})

    assert r.status_code == 400, r.content
    assert "cursor" in r.json()


def test_follow_requests_are_paged(api, make_user):
    alice = make_user(is_private=True)
    requesters = [make_user() for _ in range(5)]
    for user in requesters:
        follow(api(user), alice)

    pages, ids = walk(api(alice), REQUESTS, limit=2)

    assert [len(p["data"]) for p in pages] == [2, 2, 1]
    assert ids == sorted((str(u.id) for u in requesters), key=int)


# --- concurrency ---------------------------------------------------------------------------


def _db_counts(user) -> tuple[int, int]:
    row = User.objects.values_list("followers_count", "following_count").get(id=user.id)
    return tuple(row)


@pytest.mark.django_db(transaction=True)
def test_concurrent_follows_of_one_user_count_exactly(make_user):
    target = make_user()
    followers = [make_user() for _ in range(5)]
    # 8 requests, three followers sending theirs twice at the same moment
    senders = [followers[0], followers[0], followers[1], followers[1], followers[2], followers[3], followers[4],
               followers[4]]

    results = run_concurrently([(client_for(u), "post", f"/v1/users/{target.id}/follow") for u in senders])

    assert results == [(200, {"following": True, "status": "following"})] * len(senders)
    assert _db_counts(target) == (5, 0)
    assert counts(target) == (5, 0)
    assert all(_db_counts(u) == (0, 1) for u in followers)
    _, ids = walk(client_for(target), f"/v1/users/{target.id}/followers", limit=100)
    assert ids == sorted((str(u.id) for u in followers), key=int)


@pytest.mark.django_db(transaction=True)
def test_concurrent_unfollows_count_exactly(make_user):
    target = make_user()
    followers = [make_user() for _ in range(4)]
    for user in followers:
        follow(client_for(user), target)
    senders = followers + followers  # each unfollows twice at once

    results = run_concurrently([(client_for(u), "delete", f"/v1/users/{target.id}/follow") for u in senders])

    assert results == [(200, {"following": False})] * len(senders)
    assert _db_counts(target) == (0, 0)
    assert all(_db_counts(u) == (0, 0) for u in followers)


@pytest.mark.django_db(transaction=True)
def test_concurrent_mutual_follows_neither_deadlock_nor_miscount(make_user):
    # Regression: one UPDATE ... WHERE id IN (a, b) locked the two rows in scan order,
    # so concurrent A->B and B->A follows deadlocked (503) in about one run in three.
    users = [make_user() for _ in range(5)]
    pairs = [(a, b) for a in users for b in users if a is not b]
    results = []
    for _ in range(4):  # the race needs several rounds to show reliably
        results += run_concurrently([(client_for(a), "post", f"/v1/users/{b.id}/follow") for a, b in pairs])
        results += run_concurrently([(client_for(a), "delete", f"/v1/users/{b.id}/follow") for a, b in pairs])
        if any(not isinstance(r, tuple) or r[0] != 200 for r in results):
            break
    results += run_concurrently([(client_for(a), "post", f"/v1/users/{b.id}/follow") for a, b in pairs])

    statuses = [r[0] if isinstance(r, tuple) else r for r in results]
    assert statuses == [200] * len(results)
    assert all(_db_counts(u) == (4, 4) for u in users)


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_to_a_private_account_then_going_public(make_user):
    target = make_user(is_private=True)
    followers = [make_user() for _ in range(3)]
    senders = followers + followers

    results = run_concurrently([(client_for(u), "post", f"/v1/users/{target.id}/follow") for u in senders])

    assert results == [(200, {"following": False, "status": "requested"})] * len(senders)
    assert _db_counts(target) == (0, 0)
    assert client_for(target).patch(ME, {"is_private": False}, format="json").json()["followers_count"] == 3
    assert all(_db_counts(u) == (0, 1) for u in followers)
