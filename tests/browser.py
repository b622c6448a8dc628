"""A real browser for the tests: headless Chromium (Debian's) driven by Playwright.

The browser runs in a thread of its own: Playwright's sync API keeps an event loop
in the thread it runs in, and Django refuses database calls from a thread with a
running event loop, so the test's own thread stays free for them. Without
Chromium or the ``playwright`` package a test skips and says why (and fails under
``CI=true``: ``tests.helpers.tool_missing``).
"""
import os
import threading

from tests.helpers import tool_missing

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 30_000


def require_browser() -> None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        tool_missing("the playwright package is not installed (pip install -r requirements-dev.txt)")
    if not os.access(CHROMIUM, os.X_OK):
        tool_missing(f"no browser: {CHROMIUM} is missing (make install installs Debian's chromium "
                     "when run as root where apt-get works)")


def in_browser(steps) -> None:
    """Run ``steps(browser)`` with a fresh headless Chromium, in a thread of its own; re-raise
    what it raised. Pages it opens wait at most ``TIMEOUT_MS`` for anything."""
    from playwright.sync_api import sync_playwright

    failures = []

    def run():
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
                try:
                    steps(browser)
                finally:
                    browser.close()
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread
            failures.append(error)

    thread = threading.Thread(target=run, name="browser")
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


def new_page(browser_or_context):
    page = browser_or_context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page
