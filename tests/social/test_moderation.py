"""Suspending and reinstating a user: the services, the command, and what clients see."""
import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework_simplejwt.tokens import RefreshToken

from core.exceptions import Forbidden, NotFound
from social import services as social_services
from social.models import User
from tests.factories import PASSWORD
from tests.helpers import ids, post, post_tweet
from timelines import store

# The author cache is refreshed when the suspension commits: these tests commit.
pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "/v1/auth/token"
REFRESH = "/v1/auth/token/refresh"


def _login(anon, user):
    return anon.post(TOKEN, {"username": user.username, "password": PASSWORD}, format="json")


def test_a_suspended_user_cannot_log_in_refresh_or_post_until_reinstated_and_logs_in_anew(anon, api, make_user):
    alice = make_user()
    refresh = str(RefreshToken.for_user(alice))
    client = api(alice)

    assert social_services.user_suspend(user_id=alice.id) is True

    assert _login(anon, alice).status_code == 401
    assert anon.post(REFRESH, {"refresh": refresh}, format="json").status_code == 401
    assert post_tweet(client, "still here?").status_code == 401
    assert client.get("/v1/timeline/home").status_code == 401
    assert client.get("/v1/users/me").status_code == 401

    assert social_services.user_reinstate(user_id=alice.id) is True

    login = _login(anon, alice)
    assert login.status_code == 200
    # The suspension ended the sessions of the time, refresh and access tokens: the user logs in again.
    assert anon.post(REFRESH, {"refresh": refresh}, format="json").status_code == 401
    assert client.get("/v1/timeline/home").status_code == 401
    assert anon.post(REFRESH, {"refresh": login.json()["refresh"]}, format="json").status_code == 200
    client = api(alice)
    post(client, "back")
    assert client.get("/v1/timeline/home").status_code == 200


def test_a_suspended_authors_tweets_leave_timelines_and_come_back_when_reinstated(api, make_user, redis):
    author, reader, latecomer = make_user(), make_user(), make_user()
    for follower in (reader, latecomer):
        social_services.follow_create(follower=follower, followee_id=author.id)
    posted = [post(api(author), f"t{n}") for n in range(3)][::-1]
    assert ids(api(reader)) == posted

    social_services.user_suspend(user_id=author.id)

    assert ids(api(reader)) == []
    assert ids(api(latecomer)) == []  # a timeline rebuilt while the author is suspended
    assert api(reader).get(f"/v1/tweets/{posted[0]}").status_code == 404
    assert api(reader).get(f"/v1/users/{author.id}").status_code == 404
    assert redis.exists(store.timeline_key(reader.id))  # nothing was removed, only hidden

    social_services.user_reinstate(user_id=author.id)

    assert ids(api(reader)) == posted
    assert ids(api(latecomer)) == posted
    assert api(reader).get(f"/v1/tweets/{posted[0]}").status_code == 200


def test_suspending_twice_changes_nothing_the_second_time(make_user):
    alice = make_user()

    assert social_services.user_suspend(user_id=alice.id) is True
    assert social_services.user_suspend(user_id=alice.id) is False
    assert User.objects.get(id=alice.id).is_active is False
    assert social_services.user_reinstate(user_id=alice.id) is True
    assert social_services.user_reinstate(user_id=alice.id) is False
    assert User.objects.get(id=alice.id).is_active is True


def test_a_suspension_writes_the_active_flag_alone_on_the_users_row(make_user):
    alice = make_user()

    with CaptureQueriesContext(connection) as queries:
        social_services.user_suspend(user_id=alice.id)

    # The ORM's one UPDATE of her row (the flag, and the token version bumped in place: her sessions
    # end); the others are her neighbours' counts, joined through her follows.
    own = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "social_user"')]
    assert len(own) == 1
    assert own[0].split(" WHERE ")[0].endswith(
        'SET "is_active" = false, "token_version" = ("social_user"."token_version" + 1)'), own[0]
    others = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE social_user u")]
    assert all("u.id = f." in sql for sql in others) and len(others) == 2


def test_only_staff_may_suspend_and_only_known_users(make_user):
    alice, bob = make_user(), make_user()

    with pytest.raises(Forbidden):
        social_services.user_suspend(user_id=alice.id, actor=bob)
    with pytest.raises(NotFound):
        social_services.user_suspend(user_id=alice.id + 1000)
    assert User.objects.get(id=alice.id).is_active is True


def test_a_moderator_is_one_who_may_change_users_and_only_a_superuser_acts_on_staff(make_user, moderator_user,
                                                                                   staff):
    alice, colleague, staffer = make_user(), make_user(), make_user()
    User.objects.filter(id__in=[colleague.id, staffer.id]).update(is_staff=True)

    with pytest.raises(Forbidden):  # staff, but without social.change_user
        social_services.user_suspend(user_id=alice.id, actor=User.objects.get(id=staffer.id))
    for target in (colleague, staff, moderator_user):
        with pytest.raises(Forbidden):
            social_services.user_suspend(user_id=target.id, actor=moderator_user)
        with pytest.raises(Forbidden):
            social_services.user_reinstate(user_id=target.id, actor=moderator_user)
    assert not User.objects.filter(is_active=False).exists()

    assert social_services.user_suspend(user_id=alice.id, actor=moderator_user) is True
    assert social_services.user_suspend(user_id=colleague.id, actor=staff) is True
    assert list(User.objects.filter(is_active=False).order_by("id")) == [alice, colleague]


def _command(*args) -> str:
    out = io.StringIO()
    call_command("suspend_user", *args, stdout=out)
    return out.getvalue()


def test_the_suspend_user_command(make_user, anon):
    alice = make_user(username="alice")

    assert _command("ALICE") == "ALICE is suspended.\n"
    assert _login(anon, alice).status_code == 401
    assert "already suspended" in _command("alice")

    assert _command("alice", "--reinstate") == "alice is reinstated.\n"
    assert _login(anon, alice).status_code == 200

    with pytest.raises(CommandError, match="No such user: nobody"):
        _command("nobody")


def _moderator_command(*args) -> str:
    out = io.StringIO()
    call_command("moderator", *args, stdout=out)
    return out.getvalue()


def test_the_moderator_command_makes_and_unmakes_a_moderator(make_user, moderator_user, staff):
    from django.contrib.auth.models import Permission

    alice, bob = make_user(username="alice"), make_user()

    assert _moderator_command("ALICE") == "alice is a moderator.\n"

    alice = User.objects.get(id=alice.id)
    assert alice.is_staff and not alice.is_superuser
    assert list(alice.groups.values_list("name", flat=True)) == ["moderator"]
    assert alice.has_perm("social.change_user") and alice.has_perm("tweets.delete_tweet")
    assert not alice.has_perm("social.add_user") and not alice.has_perm("tweets.change_tweet")
    assert social_services.user_suspend(user_id=bob.id, actor=alice) is True

    assert _moderator_command("alice", "--remove") == "alice is no longer a moderator.\n"
    alice = User.objects.get(id=alice.id)
    assert not alice.is_staff and not alice.groups.exists()
    with pytest.raises(Forbidden):
        social_services.user_reinstate(user_id=bob.id, actor=alice)
    # Staff for other reasons stay staff: a superuser, or one with permissions of their own.
    moderator_user.user_permissions.add(Permission.objects.get(codename="view_media"))
    _moderator_command(staff.username)
    for user in (staff, moderator_user):
        said = _moderator_command(user.username, "--remove")
        assert said == f"{user.username} is no longer a moderator (still staff).\n"
        assert User.objects.get(id=user.id).is_staff

    with pytest.raises(CommandError, match="No such user: nobody"):
        _moderator_command("nobody")
