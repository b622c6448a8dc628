"""A JavaScript Mastodon client library, megalodon (what several Mastodon apps are built on),
streaming the home timeline from a live server: it finds the stream in /api/v1/instance and
opens a WebSocket, as those apps do. Node and the pinned package come from `make install`
(tests/js, `npm ci`)."""
import json
import queue
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from tests.helpers import tool_missing

from .conftest import start_stream_server
from .test_streams import follow, oauth_token, post

pytestmark = [pytest.mark.django_db(transaction=True)]

JS = Path(__file__).resolve().parents[1] / "js"


def test_megalodon_user_streaming_receives_updates_and_deletes(tmp_path, live_server, settings, make_user, api):
    node = shutil.which("node")
    if node is None or not (JS / "node_modules" / "megalodon").is_dir():
        tool_missing("node, or tests/js/node_modules (make install runs npm ci there when npm is installed)")
    server = start_stream_server(tmp_path, {"SITE_URL": live_server.url})
    settings.STREAMING_API_URL = server.ws_url
    reader, author = make_user(username="reader"), make_user(username="author")
    follow(api(reader), author)
    client = subprocess.Popen([node, str(JS / "stream_user.mjs"), live_server.url, oauth_token(reader, "read")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[dict] = queue.Queue()

    def read() -> None:
        for line in client.stdout:
            try:
                lines.put(json.loads(line))
            except json.JSONDecodeError:
                lines.put({"event": "output", "line": line})
    threading.Thread(target=read, daemon=True).start()

    def next_event() -> dict:
        try:
            return lines.get(timeout=15)
        except queue.Empty:
            raise AssertionError(f"no event from megalodon; the stream process said:\n{server.output()}") from None

    try:
        assert next_event() == {"event": "connect"}
        as_author = api(author)
        tweet_id = post(as_author, "to megalodon")
        assert next_event() == {"event": "update", "id": tweet_id, "content": "<p>to megalodon</p>",
                                "account": "author"}
        assert as_author.delete(f"/v1/tweets/{tweet_id}").status_code == 204
        assert next_event() == {"event": "delete", "id": tweet_id}
    finally:
        client.kill()
        client.wait()
        server.stop()
