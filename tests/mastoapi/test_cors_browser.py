"""CORS in a real browser (headless Chromium driven by Playwright): a page from another
origin reads the API with a bearer token, as a web client hosted elsewhere does, and a
request that would send credentials is refused by the browser itself.

The page is served by a tiny ``http.server`` on a spare port of ``127.0.0.1`` (another
port, so another origin than ``live_server``'s). The browser is ``tests.browser``'s.
"""
import http.server
import json
import threading

import pytest

from tests.browser import in_browser, new_page, require_browser

from .conftest import password_token

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PAGE = b"<!doctype html><title>a web client elsewhere</title><p>elsewhere</p>"

READ = """async ([base, token]) => {
    const r = await fetch(base + "/api/v1/timelines/home?limit=1", {headers: {Authorization: "Bearer " + token}});
    return {status: r.status, body: await r.json(), link: r.headers.get("Link"),
            remaining: r.headers.get("X-RateLimit-Remaining")};
}"""

WITH_CREDENTIALS = """async ([base, token]) => {
    try {
        const r = await fetch(base + "/api/v1/timelines/home",
                              {credentials: "include", headers: {Authorization: "Bearer " + token}});
        return {refused: false, status: r.status};
    } catch (error) {
        return {refused: true, error: String(error)};
    }
}"""


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass


@pytest.fixture
def elsewhere():
    """The URL of a page served from another origin than the API's."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_a_page_on_another_origin_reads_the_api_with_a_token_but_never_with_credentials(
        live_server, elsewhere, make_user, api, app_client):
    require_browser()
    reader, author = make_user(), make_user()
    assert api(reader).post(f"/v1/users/{author.id}/follow").status_code in (200, 201)
    for text in ("first", "second"):
        assert api(author).post("/v1/tweets", {"content": text}, format="json").status_code == 201
    token = password_token(app_client, reader, "read")
    assert not live_server.url.startswith(elsewhere.rstrip("/"))
    results = {}

    def steps(browser):
        page = new_page(browser)
        page.goto(elsewhere)
        results["read"] = page.evaluate(READ, [live_server.url, token])
        results["credentials"] = page.evaluate(WITH_CREDENTIALS, [live_server.url, token])

    in_browser(steps)
    read = results["read"]
    assert read["status"] == 200, json.dumps(read)
    assert [s["content"] for s in read["body"]] == ["<p>second</p>"]
    assert 'rel="next"' in read["link"]  # an exposed header: the script may read it
    assert read["remaining"] is not None and int(read["remaining"]) >= 0
    assert results["credentials"]["refused"] is True, results["credentials"]
