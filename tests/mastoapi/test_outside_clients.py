"""Clients nobody here wrote, against a live server, unmodified: the `toot` CLI (Python),
megalodon's server detection and masto.js (JavaScript, what web apps are built on).
Node and the pinned packages come from `make install` (tests/js, `npm ci`); `toot` from
requirements-dev.txt."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from tests.factories import PASSWORD
from tests.helpers import tool_missing

from .conftest import password_token
from .test_statuses import PNG

pytestmark = [pytest.mark.django_db(transaction=True)]

JS = Path(__file__).resolve().parents[1] / "js"


def _node(package: str) -> str:
    node = shutil.which("node")
    if node is None or not (JS / "node_modules" / package).is_dir():
        tool_missing(f"node, or tests/js/node_modules/{package} (make install runs npm ci there when npm is installed)")
    return node


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=90, **kwargs)
    assert done.returncode == 0, f"{args[:3]} failed:\n{done.stdout}\n{done.stderr}"
    return done


def test_megalodon_detects_a_mastodon_api(live_server):
    node = _node("megalodon")
    out = _run([node, str(JS / "detect.mjs"), live_server.url]).stdout
    assert json.loads(out) == {"sns": "mastodon"}


def test_masto_js_uploads_an_image_with_a_description_and_posts_it(live_server, make_user, app_client, tmp_path):
    node = _node("masto")
    user = make_user()
    token = password_token(app_client, user, "read write")
    image = tmp_path / "square.png"
    image.write_bytes(PNG)
    out = _run([node, str(JS / "masto_media.mjs"), live_server.url, token, str(image), "A red square",
                "with a picture"]).stdout
    result = json.loads(out)
    assert result["media"]["url"] and result["media"]["description"] == "A red square"
    status = result["status"]
    assert status["content"] == "<p>with a picture</p>"
    attached = status["mediaAttachments"]
    assert [(m["id"], m["type"], m["description"]) for m in attached] == [
        (result["media"]["id"], "image", "A red square")]
    # As any other client reads it back.
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    shown = client.get(f"/api/v1/statuses/{status['id']}").json()
    assert shown["media_attachments"][0]["description"] == "A red square"


def test_the_toot_cli_logs_in_and_reads_the_home_timeline(live_server, make_user, api, tmp_path):
    toot = Path(sys.executable).with_name("toot")
    if not toot.exists():
        tool_missing("the toot CLI (pip install -r requirements-dev.txt)")
    reader, author = make_user(username="reader"), make_user(username="author")
    assert api(reader).post(f"/v1/users/{author.id}/follow").status_code in (200, 201)
    assert api(author).post("/v1/tweets", {"content": "hello from the timeline"}, format="json").status_code == 201
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path), "TERM": "dumb"}
    logged_in = _run([str(toot), "login_cli", "--instance", live_server.url, "--email", "reader",
                      "--password", PASSWORD], env=env)
    assert "Successfully logged in" in logged_in.stdout
    assert (tmp_path / "toot" / "config.json").exists()
    timeline = _run([str(toot), "timeline", "--once"], env=env).stdout
    assert "hello from the timeline" in timeline and "@author" in timeline
