"""The moderators' admin over HTTP: a save keeps what others committed meanwhile; suspend, find, delete;
nothing there raises a moderator's privileges or edits a row around the services."""
import re
import threading

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.db import connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from social import services as social_services
from social.admin import UserAdmin
from social.models import Follow, User
from tests.factories import PASSWORD
from tests.helpers import form_fields, ids, post
from tweets import services as tweet_services
from tweets.models import Tweet

# The admin's changes reach the author cache when they commit: these tests commit.
pytestmark = pytest.mark.django_db(transaction=True)


PRIVILEGES = ("is_staff", "is_superuser", "groups", "user_permissions")


def _logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def moderator(moderator_user) -> Client:
    """A member of the "moderator" group (staff, not superuser), logged in."""
    return _logged_in(moderator_user)


@pytest.fixture
def superuser(staff) -> Client:
    return _logged_in(staff)


def _change_url(user) -> str:
    return f"/admin/social/user/{user.id}/change/"


def _committed_while_the_admin_holds_the_row(monkeypatch, changes) -> list:
    """Run ``changes`` (on another connection, committed) right after the admin reads the user it will save."""
    ran = []
    real = UserAdmin.get_object

    def get_object(self, request, object_id, from_field=None):
        obj = real(self, request, object_id, from_field)
        if request.method == "POST" and not ran:
            def concurrently():
                try:
                    ran.append(changes())
                finally:
                    connections.close_all()

            thread = threading.Thread(target=concurrently)
            thread.start()
            thread.join()
        return obj

    monkeypatch.setattr(UserAdmin, "get_object", get_object)
    return ran


def test_a_moderators_suspension_keeps_what_was_committed_after_the_page_was_read(
        moderator, make_user, api, monkeypatch):
    alice, bob, carol = make_user(), make_user(), make_user()
    page = moderator.get(_change_url(alice))
    assert page.status_code == 200
    form = form_fields(page.content.decode(), "user_form")
    assert form["is_active"] == ["on"]
    # After the page was loaded: alice goes private, renames herself, and bob asks to follow her.
    social_services.user_update(user=alice, is_private=True, display_name="Alice Again")
    social_services.follow_create(follower=bob, followee_id=alice.id)

    def meanwhile():
        # After the admin read the row it saves: alice accepts bob, follows carol and posts.
        social_services.follow_request_approve(followee=alice, follower_id=bob.id)
        social_services.follow_create(follower=alice, followee_id=carol.id)
        return tweet_services.tweet_create(author=alice, content="posted meanwhile").id

    ran = _committed_while_the_admin_holds_the_row(monkeypatch, meanwhile)
    del form["is_active"]  # the moderator unticks "active" and saves the page as loaded
    r = moderator.post(_change_url(alice), form)

    assert r.status_code == 302, r.content.decode()[-3000:]
    tweet_id = ran[0]
    alice = User.objects.get(id=alice.id)
    assert alice.is_active is False
    assert (alice.followers_count, alice.following_count) == (1, 1)
    assert alice.last_tweet_id == tweet_id
    assert alice.is_private is True and alice.display_name == "Alice Again"
    assert Follow.objects.get(follower=bob, followee=alice).state == Follow.State.ACCEPTED
    assert api(bob).get(f"/v1/tweets/{tweet_id}").status_code == 404
    assert ids(api(bob)) == []


def test_a_moderators_edit_saves_what_they_changed_and_reaches_timelines(moderator, make_user, api):
    alice, bob = make_user(), make_user()
    social_services.follow_create(follower=bob, followee_id=alice.id)
    post(api(alice))
    form = form_fields(moderator.get(_change_url(alice)).content.decode(), "user_form")
    form["display_name"] = ["Renamed"]

    assert moderator.post(_change_url(alice), form).status_code == 302

    assert User.objects.get(id=alice.id).display_name == "Renamed"
    assert api(bob).get("/v1/timeline/home").json()["data"][0]["author"]["display_name"] == "Renamed"


def test_privacy_and_counts_are_read_only_in_the_admin(moderator, make_user):
    alice, bob = make_user(is_private=True), make_user()
    social_services.follow_create(follower=bob, followee_id=alice.id)
    form = form_fields(moderator.get(_change_url(alice)).content.decode(), "user_form")
    for name in ("is_private", "followers_count", "following_count", "last_tweet_id", "has_pulled_tweets"):
        assert name not in form
    form |= {"is_private": [""], "followers_count": ["7"]}

    assert moderator.post(_change_url(alice), form).status_code == 302

    alice = User.objects.get(id=alice.id)
    assert alice.is_private is True and alice.followers_count == 0
    assert Follow.objects.get(follower=bob, followee=alice).state == Follow.State.REQUESTED


def test_a_password_change_in_the_admin_keeps_what_was_committed_meanwhile(superuser, make_user, monkeypatch):
    alice, bob = make_user(), make_user()
    _committed_while_the_admin_holds_the_row(
        monkeypatch, lambda: social_services.follow_create(follower=bob, followee_id=alice.id))

    r = superuser.post(f"/admin/social/user/{alice.id}/password/",
                       {"password1": "another-long-passphrase", "password2": "another-long-passphrase",
                        "usable_password": "true"})

    assert r.status_code == 302, r.content.decode()[-3000:]
    alice = User.objects.get(id=alice.id)
    assert alice.check_password("another-long-passphrase") and alice.followers_count == 1


def test_the_suspend_and_reinstate_actions(moderator, make_user, anon):
    alice, bob, carol = make_user(), make_user(), make_user()
    social_services.user_suspend(user_id=bob.id)

    r = moderator.post("/admin/social/user/", {"action": "suspend", "_selected_action": [alice.id, bob.id]},
                       follow=True)

    assert "1 user suspended." in r.content.decode()
    assert list(User.objects.filter(is_active=False).order_by("id")) == [alice, bob]

    r = moderator.post("/admin/social/user/", {"action": "reinstate", "_selected_action": [alice.id, carol.id]},
                       follow=True)

    assert "1 user reinstated." in r.content.decode()
    assert list(User.objects.filter(is_active=False)) == [bob]


def test_the_user_page_links_to_their_tweets(moderator, make_user, api):
    alice, bob = make_user(), make_user()
    mine, theirs = post(api(alice), "by alice"), post(api(bob), "by bob")
    link = f"/admin/tweets/tweet/?author__id__exact={alice.id}"

    assert f'href="{link}"' in moderator.get(_change_url(alice)).content.decode()
    listed = moderator.get(link)
    assert listed.status_code == 200
    page = listed.content.decode()
    assert f"/admin/tweets/tweet/{mine}/change/" in page and f"/admin/tweets/tweet/{theirs}/change/" not in page


def test_a_tweet_deleted_in_the_admin_is_gone_from_timelines_and_lookups(moderator, make_user, api):
    alice, bob = make_user(), make_user()
    social_services.follow_create(follower=bob, followee_id=alice.id)
    kept, deleted = post(api(alice), "kept"), post(api(alice), "deleted")
    assert ids(api(bob)) == [deleted, kept]

    r = moderator.post("/admin/tweets/tweet/", {"action": "delete_for_moderation", "_selected_action": [deleted]})

    assert r.status_code == 302
    assert ids(api(bob)) == [kept]
    assert api(bob).get(f"/v1/tweets/{deleted}").status_code == 404


def test_the_user_pages_render(moderator, superuser, make_user):
    alice = make_user()

    for url in ("/admin/social/user/", _change_url(alice), "/admin/social/follow/", "/admin/tweets/tweet/"):
        assert moderator.get(url).status_code == 200, url
    for url in ("/admin/social/user/", "/admin/social/user/add/", _change_url(alice),
                f"/admin/social/user/{alice.id}/password/", "/admin/social/follow/", "/admin/tweets/tweet/",
                "/admin/media/media/"):
        assert superuser.get(url).status_code == 200, url


# --- What a moderator may not do ----------------------------------------------------------------


MODERATION = [("social", "change_user"), ("social", "view_follow"), ("social", "view_user"),
              ("tweets", "delete_tweet"), ("tweets", "view_tweet")]


def _group_permissions(name: str) -> list[tuple[str, str]]:
    return sorted(Group.objects.get(name=name).permissions.values_list("content_type__app_label", "codename"))


def test_the_migration_makes_the_moderator_group_with_the_moderation_permissions_alone():
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    executor.migrate([("social", "0006_user_cache_version")])
    try:
        assert not Group.objects.filter(name="moderator").exists()
        # A group of that name an operator made before, with more; and a permission not made yet
        # (on a fresh database Django makes them after the last migration).
        Group.objects.create(name="moderator").permissions.add(Permission.objects.get(codename="add_user"))
        Permission.objects.filter(codename="delete_tweet").delete()

        executor = MigrationExecutor(connection)
        executor.migrate([("social", "0007_moderator_group")])

        assert _group_permissions("moderator") == MODERATION
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(leaves)


def test_a_moderator_may_view_users_follows_and_tweets_change_users_and_delete_tweets_nothing_else(
        moderator_user, rf):
    request = rf.get("/admin/")
    request.user = moderator_user
    allowed = set()
    for model, model_admin in admin.site._registry.items():
        checks = {"view": model_admin.has_view_permission(request), "add": model_admin.has_add_permission(request),
                  "change": model_admin.has_change_permission(request),
                  "delete": model_admin.has_delete_permission(request)}
        allowed |= {f"{model._meta.label}.{what}" for what, yes in checks.items() if yes}

    assert allowed == {"social.User.view", "social.User.change", "social.Follow.view", "tweets.Tweet.view",
                       "tweets.Tweet.delete"}


def test_a_moderator_sees_no_password_or_privileges_on_a_users_page(moderator, superuser, make_user):
    alice = make_user()
    page = moderator.get(_change_url(alice)).content.decode()
    form = form_fields(page, "user_form")

    assert "is_active" in form and "display_name" in form
    assert not [name for name in PRIVILEGES if f'name="{name}"' in page]
    assert "password/" not in page and "id_password" not in page
    # A superuser has them all.
    page = superuser.get(_change_url(alice)).content.decode()
    assert all(f'name="{name}"' in page for name in PRIVILEGES) and 'href="../password/"' in page


def test_a_moderator_cannot_grant_privileges(moderator, make_user):
    alice = make_user()
    form = form_fields(moderator.get(_change_url(alice)).content.decode(), "user_form")
    everything = Permission.objects.values_list("id", flat=True)
    form |= {"is_staff": ["on"], "is_superuser": ["on"], "groups": [str(Group.objects.get(name="moderator").id)],
             "user_permissions": [str(p) for p in everything], "display_name": ["Renamed"]}

    assert moderator.post(_change_url(alice), form).status_code == 302

    alice = User.objects.get(id=alice.id)
    assert alice.display_name == "Renamed"  # what a moderator may change is saved
    assert (alice.is_staff, alice.is_superuser) == (False, False)
    assert not alice.groups.exists() and not alice.user_permissions.exists()


def test_a_moderator_cannot_change_their_own_account(moderator, moderator_user):
    url = _change_url(moderator_user)
    assert moderator.get(url).status_code == 200  # shown, read-only
    form = form_fields(moderator.get(url).content.decode(), "user_form")
    assert not [name for name in PRIVILEGES if name in form]

    r = moderator.post(url, {"username": moderator_user.username, "is_active": "on", "is_staff": "on",
                             "is_superuser": "on", "user_permissions": list(Permission.objects.values_list("id",
                                                                                                           flat=True))})

    assert r.status_code == 403
    me = User.objects.get(id=moderator_user.id)
    assert me.is_superuser is False and not me.user_permissions.exists()
    assert list(me.groups.values_list("name", flat=True)) == ["moderator"]


@pytest.mark.parametrize("whose", ["a user's", "a superuser's", "their own"])
def test_a_moderator_cannot_set_a_password(moderator, moderator_user, staff, make_user, whose):
    user = {"a user's": make_user, "a superuser's": lambda: staff, "their own": lambda: moderator_user}[whose]()
    url = f"/admin/social/user/{user.id}/password/"

    assert moderator.get(url).status_code == 403
    r = moderator.post(url, {"password1": "taken-over-account", "password2": "taken-over-account",
                             "usable_password": "true"})

    assert r.status_code == 403
    user = User.objects.get(id=user.id)
    assert user.check_password(PASSWORD) and not user.check_password("taken-over-account")


def test_a_moderator_cannot_edit_a_superuser(moderator, staff):
    url = _change_url(staff)
    page = moderator.get(url)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()  # shown, read-only

    r = moderator.post(url, {"username": "renamed", "first_name": "Mallory"})

    assert r.status_code == 403
    boss = User.objects.get(id=staff.id)
    assert (boss.username, boss.first_name, boss.is_active, boss.is_superuser) == (staff.username, "", True, True)


def test_the_suspend_action_leaves_staff_and_superusers_to_a_superuser(moderator, superuser, staff, make_user):
    alice, colleague = make_user(), make_user()
    User.objects.filter(id=colleague.id).update(is_staff=True)

    r = moderator.post("/admin/social/user/", {"action": "suspend",
                                               "_selected_action": [alice.id, colleague.id, staff.id]}, follow=True)

    page = r.content.decode()
    assert "1 user suspended." in page
    names = ", ".join(sorted([colleague.username, staff.username]))
    assert f"Only a superuser may change a staff or superuser account: {names} left as they were." in page
    assert list(User.objects.filter(is_active=False)) == [alice]

    r = superuser.post("/admin/social/user/", {"action": "suspend", "_selected_action": [colleague.id]}, follow=True)

    assert "1 user suspended." in r.content.decode()
    assert User.objects.get(id=colleague.id).is_active is False


def test_a_moderators_actions_are_suspend_reinstate_and_the_services_delete(moderator, make_user, api):
    post(api(make_user()))  # (a list with no rows shows no actions)
    for url, actions in (("/admin/social/user/", ["reinstate", "suspend"]),
                         ("/admin/tweets/tweet/", ["delete_for_moderation"])):
        page = moderator.get(url).content.decode()
        select = re.search(r'<select name="action"[^>]*>(.*?)</select>', page, re.S)
        assert select, url
        assert sorted(re.findall(r'<option value="(\w+)"', select.group(1))) == actions, url


def test_a_moderator_cannot_add_users(moderator, moderator_user):
    # Not even if an operator gave them the permission to: the add form sets a password.
    moderator_user.user_permissions.add(Permission.objects.get(codename="add_user"))
    form = {"username": "sockpuppet", "usable_password": "true", "password1": "sock-puppet-pass",
            "password2": "sock-puppet-pass"}

    assert moderator.get("/admin/social/user/add/").status_code == 403
    assert moderator.post("/admin/social/user/add/", form).status_code == 403
    assert not User.objects.filter(username="sockpuppet").exists()


def test_only_a_superuser_sees_or_changes_oauth_apps_and_tokens(make_user, superuser):
    """Not even a staff member given every oauth2_provider permission: they could hand
    themselves another user's token."""
    staffer = make_user()
    User.objects.filter(id=staffer.id).update(is_staff=True)
    staffer.user_permissions.add(*Permission.objects.filter(content_type__app_label="oauth2_provider"))
    client = _logged_in(staffer)
    pages = ["application", "accesstoken", "refreshtoken", "grant", "idtoken"]

    for page in pages:
        assert client.get(f"/admin/oauth2_provider/{page}/").status_code == 403, page
    assert "oauth2_provider" not in client.get("/admin/").content.decode()
    for page in pages:
        assert superuser.get(f"/admin/oauth2_provider/{page}/").status_code == 200, page


def test_only_a_superuser_changes_a_group(make_user, superuser):
    """Not even a staff member given auth.change_group: they could grant their own group everything."""
    staffer = make_user()
    User.objects.filter(id=staffer.id).update(is_staff=True)
    staffer.user_permissions.add(*Permission.objects.filter(content_type__app_label="auth",
                                                            codename__endswith="_group"))
    group = Group.objects.create(name="helpers")
    staffer.groups.add(group)
    url = f"/admin/auth/group/{group.id}/change/"
    client = _logged_in(staffer)
    everything = [str(p) for p in Permission.objects.values_list("id", flat=True)]

    assert client.post(url, {"name": "helpers", "permissions": everything}).status_code == 403
    assert client.post("/admin/auth/group/add/", {"name": "mine", "permissions": everything}).status_code == 403
    assert client.post(f"/admin/auth/group/{group.id}/delete/", {"post": "yes"}).status_code == 403
    assert list(Group.objects.filter(name__in=["helpers", "mine"]).values_list("name", flat=True)) == ["helpers"]
    assert not group.permissions.exists()

    assert superuser.post(url, {"name": "helpers", "permissions": everything[:1]}).status_code == 302
    assert group.permissions.count() == 1


# --- Tweets and media: read-only, deleted through the service ---------------------------------


def test_a_tweet_cannot_be_edited_in_the_admin_not_even_by_a_superuser(superuser, make_user, api):
    alice, bob = make_user(), make_user()
    social_services.follow_create(follower=bob, followee_id=alice.id)
    tweet_id = post(api(alice), "as posted")
    url = f"/admin/tweets/tweet/{tweet_id}/change/"
    page = superuser.get(url)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()  # shown, read-only

    r = superuser.post(url, {"content": "rewritten", "media": "[]", "pushed": "", "author": alice.id})

    assert r.status_code == 403
    tweet = Tweet.objects.get(id=tweet_id)
    assert (tweet.content, tweet.pushed) == ("as posted", True)
    assert api(bob).get(f"/v1/tweets/{tweet_id}").json()["content"] == "as posted"


def test_a_moderator_deletes_a_tweet_from_its_page_through_the_service(moderator, make_user, api):
    alice, bob = make_user(), make_user()
    social_services.follow_create(follower=bob, followee_id=alice.id)
    kept, deleted = post(api(alice), "kept"), post(api(alice), "deleted")
    assert api(bob).get(f"/v1/tweets/{deleted}").status_code == 200  # cached now
    url = f"/admin/tweets/tweet/{deleted}/delete/"
    assert moderator.get(url).status_code == 200  # the confirmation page

    r = moderator.post(url, {"post": "yes"})

    assert r.status_code == 302
    assert Tweet.objects.get(id=deleted).deleted_at is not None  # soft-deleted: the row stays
    assert api(bob).get(f"/v1/tweets/{deleted}").status_code == 404
    assert ids(api(bob)) == [kept]
    assert moderator.get(url).status_code == 403  # deleted already


def test_the_moderation_delete_needs_the_delete_permission(make_user, api):
    """A staff member who may only look at tweets cannot run the list's delete action."""
    alice = make_user()
    tweet_id = post(api(alice), "stays")
    viewer = make_user()
    User.objects.filter(id=viewer.id).update(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_tweet"))
    client = _logged_in(viewer)
    assert client.get("/admin/tweets/tweet/").status_code == 200

    client.post("/admin/tweets/tweet/", {"action": "delete_for_moderation", "_selected_action": [tweet_id]})
    client.post("/admin/tweets/tweet/", {"action": "delete_selected", "_selected_action": [tweet_id], "post": "yes"})

    assert Tweet.objects.get(id=tweet_id).deleted_at is None
    assert api(alice).get(f"/v1/tweets/{tweet_id}").status_code == 200


def test_djangos_bulk_delete_is_not_offered(moderator, make_user, api):
    alice = make_user()
    tweet_id = post(api(alice), "stays")

    moderator.post("/admin/tweets/tweet/", {"action": "delete_selected", "_selected_action": [tweet_id], "post": "yes"})

    assert Tweet.objects.get(id=tweet_id).deleted_at is None


def test_media_and_follows_are_read_only_for_everyone(superuser, make_user):
    alice, bob = make_user(), make_user()
    social_services.follow_create(follower=bob, followee_id=alice.id)
    follow = Follow.objects.get(follower=bob, followee=alice)
    url = f"/admin/social/follow/{follow.id}/change/"

    assert superuser.post(url, {"follower": alice.id, "followee": bob.id, "state": "requested"}).status_code == 403
    assert superuser.post(f"/admin/social/follow/{follow.id}/delete/", {"post": "yes"}).status_code == 403
    assert superuser.get("/admin/media/media/add/").status_code == 403
    assert Follow.objects.get(id=follow.id).state == Follow.State.ACCEPTED
