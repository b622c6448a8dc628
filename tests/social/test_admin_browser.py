"""The moderators' admin in a real browser (headless Chromium driven by Playwright).

A moderator (a member of the "moderator" group, staff but not superuser) and a
superuser each log in through the admin's login page, find a user's tweets from
the user's page and delete one with the list's action and another from its own
page, then suspend another user by unticking "Active"; the effects are then
checked over HTTP through the API, as clients see them. The moderator's pages
show no password, staff, superuser, group or permission field, and a
superuser's page has nothing to save. The web server is pytest-django's ``live_server`` (a thread serving
the test database); the browser is ``tests.browser``'s.
"""
import pytest
import requests

from social import services as social_services
from tests.browser import in_browser, new_page, require_browser
from tests.factories import PASSWORD
from tests.helpers import post
from tweets import services as tweet_services

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _token(base: str, user) -> requests.Response:
    return requests.post(f"{base}/v1/auth/token", json={"username": user.username, "password": PASSWORD},
                         timeout=10)


PRIVILEGE_FIELDS = ("#id_is_staff", "#id_is_superuser", "select[name=groups]", "select[name=user_permissions]",
                    "a[href='../password/']")


@pytest.mark.parametrize("role", ["moderator", "superuser"])
def test_a_moderator_deletes_tweets_and_suspends_a_user_in_the_admin(live_server, moderator_user, staff, make_user,
                                                                      api, role):
    require_browser()
    acting = moderator_user if role == "moderator" else staff
    base = live_server.url
    author, chatty, reader = make_user(), make_user(), make_user()
    for followee in (author, chatty):
        social_services.follow_create(follower=reader, followee_id=followee.id)
    by_author = tweet_services.tweet_create(author=author, content="to be hidden with its author").id
    kept = post(api(chatty), "this one stays")
    doomed = post(api(chatty), "this one goes")
    also_doomed = post(api(chatty), "this one goes from its page")
    author_refresh = _token(base, author).json()["refresh"]
    reader_headers = {"Authorization": f"Bearer {_token(base, reader).json()['access']}"}

    def home() -> list[str]:
        r = requests.get(f"{base}/v1/timeline/home", headers=reader_headers, timeout=10)
        assert r.status_code == 200, r.text
        return [t["tweet_id"] for t in r.json()["data"]]

    assert home() == [also_doomed, doomed, kept, str(by_author)]

    def moderate(browser):
        page = new_page(browser)
        page.goto(f"{base}/admin/login/?next=/admin/")
        page.fill("#id_username", acting.username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("text=Site administration")

        # Find the chatty user, follow the link to their tweets, delete one with the moderation action.
        page.goto(f"{base}/admin/social/user/?q={chatty.username}")
        page.click(f"a[href^='/admin/social/user/{chatty.id}/change/']")
        page.click(f"text=Tweets by {chatty.username}")
        page.check(f"input[name=_selected_action][value='{doomed}']")
        page.select_option("select[name=action]", label="Delete selected tweets (moderation)")
        page.click("button[name=index]")
        page.wait_for_selector("text=1 tweet deleted.")

        # Delete another from its own page: read-only, with a Delete link and a confirmation.
        page.goto(f"{base}/admin/tweets/tweet/{also_doomed}/change/")
        assert page.locator("input[name=_save]").count() == 0
        assert page.locator("textarea[name=content]").count() == 0
        page.click("a.deletelink")
        page.click("input[type=submit]")  # "Yes, I'm sure"
        page.wait_for_selector(".messagelist .success")

        # Suspend the author: untick "Active" on their page and save.
        page.goto(f"{base}/admin/social/user/{author.id}/change/")
        present = [selector for selector in PRIVILEGE_FIELDS if page.locator(selector).count()]
        if role == "moderator":
            assert present == [], present
        else:
            assert present == list(PRIVILEGE_FIELDS)
        page.uncheck("#id_is_active")
        page.click("input[name=_save]")
        page.wait_for_selector(".messagelist .success")

        # A superuser's page: only a superuser may save it.
        page.goto(f"{base}/admin/social/user/{staff.id}/change/")
        assert page.locator("input[name=_save]").count() == (0 if role == "moderator" else 1)

    in_browser(moderate)

    # The suspended author can neither log in nor refresh a token; their tweets are gone.
    assert _token(base, author).status_code == 401
    assert requests.post(f"{base}/v1/auth/token/refresh", json={"refresh": author_refresh},
                         timeout=10).status_code == 401
    # The deleted tweets are 404s and, with the suspended author's, absent from the follower's timeline.
    for deleted in (doomed, also_doomed):
        r = requests.get(f"{base}/v1/tweets/{deleted}", headers=reader_headers, timeout=10)
        assert r.status_code == 404, r.text
    assert home() == [kept]
