"""The web client at ``/`` in a real browser (``tests.browser``), against a live stack:
the web server (pytest-django's ``live_server``, fan-out inline), the stream process
(uvicorn, as the Procfile runs it) and the run's S3 endpoint, which the browser uploads
to directly. Two (then three) people, each in a browser context of their own, sign up
and sign in through the OAuth pages, follow, post with an image, see it arrive without a
reload, scroll to the first tweet past the cache, delete, and answer a follow request.

With ``WEB_SCREENSHOTS=<dir>`` the screenshots in ``docs/img`` are taken again there.
"""
import io
import os
import re
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.browser import in_browser, new_page, require_browser
from tests.factories import PASSWORD
from tests.streaming.conftest import start_stream_server
from tweets import services as tweet_services
from tweets.text import weighted_length

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = os.environ.get("WEB_SCREENSHOTS")
OLD_TWEETS = 45  # past the cache, which holds CACHE_ENTRIES of a timeline here
CACHE_ENTRIES = 20


def picture() -> bytes:
    """A PNG worth looking at in a screenshot: a sky fading into a sea."""
    image = Image.new("RGB", (640, 320))
    for y in range(320):
        shade = (40 + y // 3, 110 + y // 4, 200 - y // 5) if y < 190 else (20, 70 + (y - 190) // 3, 120)
        image.paste(shade, (0, y, 640, y + 1))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def screenshot(page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"))


def watched(page, errors: list[str]):
    """``page``, with what it shows as an error (``#alert``) or throws collected in ``errors``."""
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    page.expose_function("reportAlert", lambda text: errors.append(f"{page.url}: alert: {text}"))
    page.add_init_script("""new MutationObserver(() => {
        const alert = document.getElementById('alert');
        if (alert && alert.textContent) reportAlert(alert.textContent);
    }).observe(document, {subtree: true, childList: true, characterData: true});""")
    return page


def sign_in(page, base: str, username: str, *, new: bool = False) -> None:
    """From the welcome page through the OAuth pages (the sign-up page when ``new``) and the
    consent page, as for any app, back to the home timeline."""
    page.goto(f"{base}/")
    page.click("#sign-up" if new else "#sign-in")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#signUpForm input[type=submit]" if new else "#loginForm input[type=submit]")
    page.click("input[name=allow]")
    page.wait_for_selector("#compose-text")


def shown_ids(page) -> list[str]:
    return page.eval_on_selector_all("main article.status", "articles => articles.map(a => a.dataset.id)")


def scroll_to_the_end(page) -> None:
    """Scroll down as a reader does, a page's height at a time, until the first tweet says so."""
    for _ in range(200):
        if page.locator("p.end").is_visible():
            return
        page.evaluate("scrollTo(0, document.body.scrollHeight)")
        page.wait_for_function("() => document.querySelector('.feed').getAttribute('aria-busy') === 'false'")
        page.wait_for_timeout(50)
    state = page.evaluate("""() => ({busy: document.querySelector('.feed').getAttribute('aria-busy'),
        retry: !document.querySelector('.retry').hidden, alert: document.getElementById('alert').textContent,
        scrollY, height: document.body.scrollHeight})""")
    raise AssertionError(f"never reached the first tweet; shown: {len(shown_ids(page))}, {state}")


def home_ids(base: str, username: str) -> list[str]:
    """The home timeline over /v1, to the end: what the page must show."""
    token = requests.post(f"{base}/v1/auth/token", json={"username": username, "password": PASSWORD},
                          timeout=10).json()["access"]
    ids, cursor = [], None
    while True:
        r = requests.get(f"{base}/v1/timeline/home", params={"limit": 100, **({"cursor": cursor} if cursor else {})},
                         headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert r.status_code == 200, r.text
        ids += [t["tweet_id"] for t in r.json()["data"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return ids


@pytest.fixture
def stack(live_server, settings, tmp_path):
    """The live web server's URL, with a stream process named in its instance documents."""
    settings.TIMELINE_MAX_ENTRIES = CACHE_ENTRIES
    server = start_stream_server(tmp_path, {"SITE_URL": live_server.url})
    settings.STREAMING_API_URL = server.ws_url
    try:
        yield live_server.url
    finally:
        server.stop()


def test_two_people_follow_post_with_an_image_see_it_live_and_delete_it(stack, make_user):
    require_browser()
    base = stack
    bob = make_user(username="bob", display_name="Bob")
    carol = make_user(username="carol", display_name="Carol", is_private=True)
    old = [tweet_services.tweet_create(author=bob, content=f"old tweet {n}").id for n in range(OLD_TWEETS)]
    tweet_services.tweet_create(author=carol, content="for approved eyes only")
    image = picture()
    seen, errors = {}, []

    def people(browser):
        alice_context, bob_context = browser.new_context(), browser.new_context()
        alice, as_bob = watched(new_page(alice_context), errors), watched(new_page(bob_context), errors)
        sign_in(alice, base, "alice", new=True)
        sign_in(as_bob, base, "bob")

        # Alice finds Bob's profile and follows him; his tweets come into her home.
        alice.goto(f"{base}/@bob")
        alice.wait_for_selector("#follow:has-text('Follow')")
        alice.click("#follow")
        alice.wait_for_selector("#follow:has-text('Unfollow')")
        alice.wait_for_selector(".profile-tweets article.status:has-text('old tweet 44')")
        screenshot(alice, "profile")
        alice.click("nav >> text=Home")
        alice.wait_for_selector("article.status")

        # Bob posts with an image: presigned, uploaded straight to storage, previewed.
        as_bob.fill("#compose-text", "Sunset over the bay, from the web client")
        as_bob.set_input_files("#compose-file", files=[{"name": "bay.png", "mimeType": "image/png", "buffer": image}])
        as_bob.wait_for_selector("li.attachment.uploaded")
        screenshot(as_bob, "compose")
        as_bob.click("#compose-post")
        as_bob.wait_for_selector("article.status:has-text('Sunset over the bay')")

        # It arrives at the top of Alice's home without a reload, image and all.
        first = alice.locator("main article.status").first
        first.locator("text=Sunset over the bay").wait_for()
        first.locator(".media img").wait_for()
        alice.wait_for_function("() => { const img = document.querySelector('main article.status .media img');"
                                " return img && img.complete && img.naturalWidth === 640; }")
        seen["live"] = first.get_attribute("data-id")
        screenshot(alice, "home")

        # Its time links to its own page (the Status's url), and back is the home again.
        first.locator("a.permalink").click()
        alice.wait_for_url(f"{base}/@bob/{seen['live']}")
        alice.locator(f"main article.status[data-id='{seen['live']}'] >> text=Sunset over the bay").wait_for()
        alice.go_back()
        alice.locator("main .feed article.status").first.locator("text=Sunset over the bay").wait_for()

        # Endless scrolling down to the very first tweet, past the cache, each once, scrolled
        # as fast as the pages come (which once lost the end of the list between two frames).
        alice.bring_to_front()
        scroll_to_the_end(alice)
        seen["scrolled"] = shown_ids(alice)

        # Scrolled down, a new tweet waits behind a bar instead of moving the page.
        reading = alice.locator("main article.status").nth(30)
        before = (alice.evaluate("scrollY"), reading.bounding_box()["y"])
        as_bob.fill("#compose-text", "one more while you read")
        as_bob.click("#compose-post")
        alice.wait_for_selector("#new-bar:has-text('1 new tweet')")
        seen["kept_still"] = (before, (alice.evaluate("scrollY"), reading.bounding_box()["y"]))
        assert "one more while you read" not in alice.inner_text("main .feed")
        alice.click("#new-bar")
        alice.locator("main article.status").first.locator("text=one more while you read").wait_for()

        # Bob deletes the picture; it vanishes from Alice's page.
        picture_post = as_bob.locator("article.status", has_text="Sunset over the bay")
        picture_post.locator("button.delete").click()
        picture_post.locator("button.confirm-delete").click()
        alice.locator(f"article.status[data-id='{seen['live']}']").wait_for(state="detached")

        # Carol's account is locked: Alice asks, Carol approves, Alice then sees her tweets.
        alice.goto(f"{base}/@carol")
        alice.wait_for_selector("text=Only people @carol approves see their tweets.")
        alice.click("#follow:has-text('Request to follow')")
        alice.wait_for_selector("#follow:has-text('Cancel request')")
        as_carol = watched(new_page(browser.new_context()), errors)
        sign_in(as_carol, base, "carol")
        as_carol.click("nav >> text=Follow requests")
        as_carol.click("li[data-account=alice] button.approve")
        as_carol.wait_for_selector("text=@alice now follows you.")
        alice.reload()
        alice.wait_for_selector("#follow:has-text('Unfollow')")
        alice.wait_for_selector("article.status:has-text('for approved eyes only')")

    in_browser(people)

    assert errors == []  # nothing went wrong on any page, nor was said to
    everything = home_ids(base, "alice")
    assert seen["scrolled"][0] == seen["live"]
    assert seen["scrolled"] == [seen["live"], *[str(i) for i in reversed(old)]]
    assert len(set(seen["scrolled"])) == len(seen["scrolled"]) == OLD_TWEETS + 1
    assert seen["kept_still"][0] == seen["kept_still"][1]
    assert seen["live"] not in everything  # deleted


COUNTED = [
    "",
    "plain ascii text",
    "newer emoji, which the server's list counts by their parts: 😮‍💨 🧔‍♂️ 🐻‍❄️ 🏳️‍⚧️ 🫱🏻‍🫲🏼 🧑🏻‍❤️‍💋‍🧑🏼",
    "text presentation ☺︎, a keycap on a letter a⃣, an unassigned flag 🇦🇦",
    "a t.co link https://t.co/abc/def and one too long https://t.co/" + "a" * 41,
    "a host label over 63: https://" + "a" * 64 + ".com/x",
    "international domains: https://bücher.de/x and 日本語.jp",
    "a link https://example.com/a/long/path?with=query&and=more#fragment counts 23",
    "bare domains too: example.com and sub.example.co.uk/path, not file.txt",
    "日本語のテキストは二倍に数えます",
    "emoji 😷 and a family 👨‍👩‍👧‍👦 and a flag 🇫🇷 and a keycap 1️⃣ and a tone 👋🏽",
    "Cyrillic Привет and Greek Γειά and Arabic مرحبا",
    "e\u0301 decomposed is composed first",
    "line\r\nendings\rcount\nonce",
    "ends with a link http://t.co/abc.",
    "x" * 300,
]


def test_the_compose_counter_counts_as_the_server_does(live_server):
    require_browser()
    counted = {}

    def count(browser):
        page = new_page(browser)
        page.goto(f"{live_server.url}/")
        counted.update(page.evaluate("""async (samples) => {
            const { countingRules, makeCounter } = await import('/static/web/count.js');
            const config = JSON.parse(document.getElementById('config').textContent);
            const count = makeCounter(await countingRules(config.counting_rules_url));
            return Object.fromEntries(samples.map((text) => [text, count(text)]));
        }""", COUNTED))

    in_browser(count)
    assert counted == {text: weighted_length(text) for text in COUNTED}


def test_the_reading_position_errors_in_plain_words_and_the_keyboard(stack, make_user, settings):
    require_browser()
    base = stack
    reader, author = make_user(username="reader"), make_user(username="writer")
    from social import services as social_services

    social_services.follow_create(follower=reader, followee_id=author.id)
    ids = [tweet_services.tweet_create(author=author, content=f"tweet number {n}").id for n in range(40)]
    settings.RATE_LIMIT_TWEETS = "1/hour"
    settings.MEDIA_QUOTA_BYTES = 100  # less than any picture: the API refuses it with a 413
    seen = {}

    def read(browser):
        context = browser.new_context()
        page = new_page(context)
        sign_in(page, base, "reader")
        page.wait_for_selector("article.status")

        # The keyboard: j and k move between tweets, n goes to compose.
        page.keyboard.press("Escape")
        page.keyboard.press("j")
        page.keyboard.press("j")
        seen["j"] = page.evaluate("document.activeElement.dataset.id")
        page.keyboard.press("k")
        seen["k"] = page.evaluate("document.activeElement.dataset.id")
        page.keyboard.press("n")
        seen["n"] = page.evaluate("document.activeElement.id")

        # Read down to the 25th tweet (on the second page); after a reload the page opens there again.
        page.evaluate("scrollTo(0, document.body.scrollHeight)")
        target = page.locator("article.status").nth(24)
        page.evaluate("(id) => { const a = document.querySelector(`[data-id='${id}']`);"
                      " scrollTo(0, a.getBoundingClientRect().top + scrollY"
                      " - document.querySelector('.bar').getBoundingClientRect().bottom + 1); }",
                      target.get_attribute("data-id"))
        seen["read_to"] = target.get_attribute("data-id")
        with page.expect_response(lambda r: r.url.endswith("/api/v1/markers") and r.request.method == "POST"
                                  and seen["read_to"] in (r.request.post_data or "")):
            pass  # saved a second after scrolling stops
        page.reload()
        page.wait_for_function("(id) => document.activeElement && document.activeElement.dataset.id === id",
                               arg=seen["read_to"])
        seen["reopened_at"] = page.evaluate(
            "() => { const a = document.activeElement; return a.getBoundingClientRect().top"
            " - document.querySelector('.bar').getBoundingClientRect().bottom; }")

        # Errors in plain words: over the posting limit, a file too large (for its type; for the
        # quota left, the API's 413), and offline.
        page.evaluate("scrollTo(0, 0)")
        page.fill("#compose-text", "this one is posted")
        page.click("#compose-post")
        page.wait_for_selector("text=Posted.")
        page.fill("#compose-text", "this one is over the limit")
        page.click("#compose-post")
        page.wait_for_selector(".compose-error:visible")
        seen["429"] = page.locator(".compose-error").inner_text()
        page.set_input_files("#compose-file", files=[{
            "name": "huge.png", "mimeType": "image/png", "buffer": b"\0" * (settings.MEDIA_IMAGE_MAX_BYTES + 1)}])
        page.wait_for_selector(".compose-error:has-text('huge.png')")
        seen["too_large"] = page.locator(".compose-error").inner_text()
        page.set_input_files("#compose-file", files=[{"name": "small.png", "mimeType": "image/png",
                                                      "buffer": picture()}])
        page.wait_for_selector(".compose-error:has-text('small.png')")
        seen["413"] = page.locator(".compose-error").inner_text()
        context.set_offline(True)
        page.click("#compose-post")
        page.wait_for_selector("#offline:visible")
        page.wait_for_selector(".compose-error:has-text('offline')")
        seen["offline"] = page.locator(".compose-error").inner_text()

    in_browser(read)
    assert seen["j"] == str(ids[-2]) and seen["k"] == str(ids[-1]) and seen["n"] == "compose-text"
    assert abs(seen["reopened_at"]) <= 2, seen
    assert re.fullmatch(r"You're doing that too often\. Try again in \d+ (seconds?|minutes?)\.", seen["429"]), seen
    assert re.fullmatch(r"huge\.png is too large \([\d.]+ MB\); the most is [\d.]+ MB\.", seen["too_large"]), seen
    assert seen["413"].startswith("small.png: That is too large for the server. Media storage quota exceeded"), seen
    assert seen["offline"].startswith("You're offline"), seen
