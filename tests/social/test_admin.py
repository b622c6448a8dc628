"""The moderators' admin over HTTP: a save keeps what others committed meanwhile; suspend, find, delete."""
import threading

import pytest
from django.db import connections
from django.test import Client

from social import services as social_services
from social.admin import UserAdmin
from social.models import Follow, User
from tests.helpers import form_fields, ids, post
from tweets import services as tweet_services

# The admin's changes reach the author cache when they commit: these tests commit.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def moderator(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


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


def test_a_password_change_in_the_admin_keeps_what_was_committed_meanwhile(moderator, make_user, monkeypatch):
    alice, bob = make_user(), make_user()
    _committed_while_the_admin_holds_the_row(
        monkeypatch, lambda: social_services.follow_create(follower=bob, followee_id=alice.id))

    r = moderator.post(f"/admin/social/user/{alice.id}/password/",
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


def test_the_user_pages_render(moderator, make_user):
    alice = make_user()

    for url in ("/admin/social/user/", "/admin/social/user/add/", _change_url(alice),
                f"/admin/social/user/{alice.id}/password/", "/admin/social/follow/"):
        assert moderator.get(url).status_code == 200, url
