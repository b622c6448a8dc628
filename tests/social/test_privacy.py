"""Private means private on every path, whatever fails after a commit: private lists,
removing a follower, suspended users out of lists and counts, MAX_FOLLOWING, going public
in batches, and changes replayed from PostgreSQL when their cache update was lost."""
import pytest
from django.db import connection
from redis.exceptions import ConnectionError as RedisConnectionError

from social import cache as author_cache
from social import services as social_services
from social.models import AccountChange, Follow, User
from tests.conftest import client_for
from tests.helpers import ids, run_concurrently, scroll
from timelines import services as timeline_services
from timelines import store
from timelines.models import PendingFollowUpdate

pytestmark = pytest.mark.django_db(transaction=True)


def post(client, content="hello") -> str:
    r = client.post("/v1/tweets", {"content": content}, format="json")
    assert r.status_code == 201, r.content
    return r.json()["tweet_id"]


def counts(viewer, user) -> tuple[int, int]:
    body = client_for(viewer).get(f"/v1/users/{user.id}").json()
    return body["followers_count"], body["following_count"]


def listed(viewer, user, which: str) -> list[int]:
    r = client_for(viewer).get(f"/v1/users/{user.id}/{which}")
    assert r.status_code == 200, r.content
    return [int(u["user_id"]) for u in r.json()["data"]]


def private_with_follower(make_user):
    """A private account, an accepted follower (approved) and a stranger."""
    owner, follower, stranger = make_user(is_private=True), make_user(), make_user()
    client_for(follower).post(f"/v1/users/{owner.id}/follow")
    social_services.follow_request_approve(followee=owner, follower_id=follower.id)
    return owner, follower, stranger


# --- the lists of a private account ---------------------------------------------------------


@pytest.mark.parametrize("which", ["followers", "following"])
def test_a_private_accounts_lists_are_for_itself_and_its_accepted_followers(make_user, which):
    owner, follower, stranger = private_with_follower(make_user)
    requester = make_user()
    client_for(requester).post(f"/v1/users/{owner.id}/follow")  # pending, not accepted

    for outsider in (stranger, requester):
        r = client_for(outsider).get(f"/v1/users/{owner.id}/{which}")
        assert r.status_code == 403, r.content
        assert "private" in r.json()["detail"]
    assert client_for(owner).get(f"/v1/users/{owner.id}/{which}").status_code == 200
    assert client_for(follower).get(f"/v1/users/{owner.id}/{which}").status_code == 200
    social_services.user_update(user=owner, is_private=False)
    assert client_for(stranger).get(f"/v1/users/{owner.id}/{which}").status_code == 200


# --- removing a follower ----------------------------------------------------------------------


def test_a_removed_follower_loses_the_private_account_on_every_path(make_user, settings):
    settings.TIMELINE_MAX_ENTRIES = 3  # most of the account's tweets lie past the cache: PostgreSQL pages
    owner, follower, _ = private_with_follower(make_user)
    reader = client_for(follower)
    posted = [post(client_for(owner), f"private {n}") for n in range(6)]
    assert scroll(reader, limit=2) == posted[::-1]
    assert reader.get(f"/v1/tweets/{posted[0]}").status_code == 200

    r = client_for(owner).delete(f"/v1/users/me/followers/{follower.id}")

    assert r.status_code == 204
    assert scroll(reader, limit=2) == []
    assert all(reader.get(f"/v1/tweets/{t}").status_code == 404 for t in posted)
    assert counts(owner, owner) == (0, 0) and counts(follower, follower) == (0, 0)
    assert client_for(owner).delete(f"/v1/users/me/followers/{follower.id}").status_code == 204  # idempotent
    again = reader.post(f"/v1/users/{owner.id}/follow")
    assert again.json() == {"following": False, "status": "requested"}  # can only ask again


def test_a_removed_follower_loses_a_pulled_celebritys_tweets_too(make_user, settings):
    settings.TIMELINE_CELEBRITY_THRESHOLD = 1  # the owner's tweets are pulled by readers, not pushed
    owner, follower, _ = private_with_follower(make_user)
    reader = client_for(follower)
    tweet = post(client_for(owner), "pulled")
    assert ids(reader) == [tweet]

    client_for(owner).delete(f"/v1/users/me/followers/{follower.id}")

    assert ids(reader) == []
    assert reader.get(f"/v1/tweets/{tweet}").status_code == 404


def test_removing_a_follower_leaves_pending_requests_to_reject(make_user):
    owner, requester = make_user(is_private=True), make_user()
    client_for(requester).post(f"/v1/users/{owner.id}/follow")
    assert client_for(owner).delete(f"/v1/users/me/followers/{requester.id}").status_code == 204
    assert Follow.objects.filter(follower=requester, followee=owner, state=Follow.State.REQUESTED).exists()
    assert client_for(owner).post(f"/v1/follow-requests/{requester.id}/reject").status_code == 200
    assert not Follow.objects.filter(follower=requester, followee=owner).exists()


# --- suspended users vanish from lists and counts ------------------------------------------------


def test_suspended_users_vanish_from_lists_and_counts_and_come_back(make_user):
    star, fan, other, followed = make_user(), make_user(), make_user(), make_user()
    for user in (fan, other):
        client_for(user).post(f"/v1/users/{star.id}/follow")
    client_for(fan).post(f"/v1/users/{followed.id}/follow")
    assert counts(other, star) == (2, 0)

    social_services.user_suspend(user_id=fan.id)

    assert counts(other, star) == (1, 0)
    assert counts(other, followed) == (0, 0)
    assert listed(other, star, "followers") == [other.id]
    assert listed(other, followed, "followers") == []
    social_services.user_reinstate(user_id=fan.id)
    assert counts(other, star) == (2, 0)
    assert listed(other, star, "followers") == sorted([fan.id, other.id])
    assert counts(fan, fan) == (0, 2)


def test_edges_of_a_suspended_user_change_no_count_and_reinstating_counts_them_once(make_user):
    owner, fan, leaver = make_user(is_private=True), make_user(), make_user()
    client_for(fan).post(f"/v1/users/{owner.id}/follow")  # pending
    client_for(leaver).post(f"/v1/users/{owner.id}/follow")
    social_services.follow_request_approve(followee=owner, follower_id=leaver.id)
    social_services.user_suspend(user_id=fan.id)
    social_services.user_suspend(user_id=leaver.id)
    assert counts(owner, owner) == (0, 0)

    social_services.follow_request_approve(followee=owner, follower_id=fan.id)  # a suspended requester
    social_services.follower_remove(followee=owner, follower_id=leaver.id)  # a suspended follower goes

    assert counts(owner, owner) == (0, 0)
    social_services.user_reinstate(user_id=fan.id)
    social_services.user_reinstate(user_id=leaver.id)
    assert counts(owner, owner) == (1, 0)
    assert User.objects.values_list("following_count", flat=True).get(id=fan.id) == 1
    assert User.objects.values_list("following_count", flat=True).get(id=leaver.id) == 0


# --- MAX_FOLLOWING ----------------------------------------------------------------------------------


def test_a_user_follows_at_most_max_following_accounts(make_user, settings):
    settings.MAX_FOLLOWING = 2
    user = make_user()
    public, private, third = make_user(), make_user(is_private=True), make_user()
    client = client_for(user)
    assert client.post(f"/v1/users/{public.id}/follow").status_code == 200
    assert client.post(f"/v1/users/{private.id}/follow").json()["status"] == "requested"  # requests count

    r = client.post(f"/v1/users/{third.id}/follow")

    assert r.status_code == 403 and "2 accounts" in r.json()["detail"]
    assert not Follow.objects.filter(follower=user, followee=third).exists()
    assert client.post(f"/v1/users/{public.id}/follow").status_code == 200  # a repeat is no new follow
    client.delete(f"/v1/users/{public.id}/follow")
    assert client.post(f"/v1/users/{third.id}/follow").status_code == 200


# --- going public ----------------------------------------------------------------------------------


def test_going_public_approves_pending_requests_in_batches(make_user):
    owner = make_user(is_private=True)
    requesters = [make_user() for _ in range(5)]
    for user in requesters:
        client_for(user).post(f"/v1/users/{owner.id}/follow")
    with connection.cursor() as cursor:  # the account went public, and the approvals never ran
        cursor.execute("UPDATE social_user SET is_private = false WHERE id = %s", [owner.id])

    assert social_services.follow_requests_accept_pending(followee_id=owner.id, batch_size=2) == 5

    assert not Follow.objects.filter(followee=owner, state=Follow.State.REQUESTED).exists()
    assert counts(owner, owner) == (5, 0)


def test_a_follow_racing_a_switch_to_public_neither_deadlocks_nor_fails(make_user):
    requesters = [make_user() for _ in range(6)]
    owner = make_user(is_private=True)  # the highest id: locked last in id order
    for user in requesters[:3]:
        client_for(user).post(f"/v1/users/{owner.id}/follow")

    results = run_concurrently(
        [(client_for(owner), "patch", "/v1/users/me", {"data": {"is_private": False}, "format": "json"})]
        + [(client_for(u), "post", f"/v1/users/{owner.id}/follow") for u in requesters])

    assert [r[0] for r in results] == [200] * 7, results
    assert set(Follow.objects.filter(followee=owner).values_list("state", flat=True)) == {"accepted"}
    assert counts(owner, owner) == (6, 0)


# --- changes replayed from PostgreSQL ----------------------------------------------------------------


def break_redis_for(monkeypatch, module, name):
    """Make ``module.name`` fail as if Redis were unreachable (the worst moment: right after commit)."""
    def unreachable(*args, **kwargs):
        raise RedisConnectionError("Redis unreachable")

    monkeypatch.setattr(module, name, unreachable)


def test_going_private_while_redis_is_unreachable_takes_effect_once_replayed(make_user, monkeypatch):
    author, stranger = make_user(), make_user()
    tweet = post(client_for(author))
    assert client_for(stranger).get(f"/v1/tweets/{tweet}").status_code == 200  # cached as public
    break_redis_for(monkeypatch, author_cache, "refresh_many")
    owner_client = client_for(author)
    owner_client.raise_request_exception = False

    assert owner_client.patch("/v1/users/me", {"is_private": True}, format="json").status_code == 200
    assert client_for(stranger).get(f"/v1/tweets/{tweet}").status_code == 200  # the stale cache, for now

    monkeypatch.undo()
    assert social_services.account_changes_replay() >= 1
    assert client_for(stranger).get(f"/v1/tweets/{tweet}").status_code == 404
    assert not AccountChange.objects.exists()


def test_a_replay_waits_while_redis_is_unreachable(make_user, monkeypatch):
    user = make_user()
    social_services.user_update(user=user, is_private=True)
    break_redis_for(monkeypatch, author_cache, "refresh_many")
    with pytest.raises(RedisConnectionError):
        social_services.account_changes_replay()
    assert AccountChange.objects.filter(user_id=user.id).exists()  # kept for the next run
    monkeypatch.undo()
    assert social_services.account_changes_replay() >= 1
    assert author_cache.get_or_fill_many([user.id])[user.id].private is True


def test_a_suspension_made_in_sql_stops_the_user_and_their_tweets_once_replayed(make_user):
    author, reader = make_user(), make_user()
    client_for(reader).post(f"/v1/users/{author.id}/follow")
    tweet = post(client_for(author))
    assert ids(client_for(reader)) == [tweet]
    author_client = client_for(author)
    assert author_client.get("/v1/timeline/home").status_code == 200  # the author cache says active

    with connection.cursor() as cursor:
        cursor.execute("UPDATE social_user SET is_active = false WHERE id = %s", [author.id])
    assert AccountChange.objects.filter(user_id=author.id).count() == 1  # logged by the trigger
    social_services.account_changes_replay()

    assert author_client.get("/v1/timeline/home").status_code == 401
    assert ids(client_for(reader)) == []


def test_a_user_deleted_in_sql_is_refused_once_replayed(make_user):
    user = make_user()
    client = client_for(user)
    assert client.get("/v1/timeline/home").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM social_user WHERE id = %s", [user.id])
    social_services.account_changes_replay()
    assert client.get("/v1/timeline/home").status_code == 401


def test_an_unfollow_whose_timeline_update_was_lost_takes_effect_once_replayed(make_user, monkeypatch):
    author, reader = make_user(), make_user()
    client_for(reader).post(f"/v1/users/{author.id}/follow")
    tweet = post(client_for(author))
    assert ids(client_for(reader)) == [tweet]  # timeline and follow graph cached
    break_redis_for(monkeypatch, store, "generation_advance")
    monkeypatch.setattr(timeline_services, "_enqueue", lambda *args: None)  # and the retry never ran
    client = client_for(reader)
    client.raise_request_exception = False

    assert client.delete(f"/v1/users/{author.id}/follow").status_code == 200
    monkeypatch.undo()
    assert ids(client_for(reader)) == [tweet]  # the cached graph outlived the unfollow, for now
    assert PendingFollowUpdate.objects.filter(user_id=reader.id).exists()

    assert timeline_services.follow_updates_replay(older_than_seconds=0) == 1
    assert ids(client_for(reader)) == []
    assert not PendingFollowUpdate.objects.exists()


def test_a_follow_update_that_ran_leaves_nothing_to_replay(make_user):
    author, reader = make_user(), make_user()
    client_for(reader).post(f"/v1/users/{author.id}/follow")
    client_for(reader).delete(f"/v1/users/{author.id}/follow")
    assert not PendingFollowUpdate.objects.exists()
    assert timeline_services.follow_updates_replay(older_than_seconds=0) == 0
