"""Drive a running stack's Mastodon-compatible API with Mastodon.py, as an existing client would.

    .venv/bin/python scripts/mastodon_smoke.py http://127.0.0.1:8000

Registers two users through ``/v1`` (names unique to this run), then, through
Mastodon.py alone: registers an app, logs both in with a password, posts with
an image, follows (and the reader sees the post), pages the home timeline to
its end with ``fetch_next`` and back with ``fetch_previous``, sets and reads the
marker, deletes a status, and revokes the token. Exits non-zero on the first
check that fails. The suite runs the same flow past the cached entries
(``tests/mastoapi/test_mastodon_py.py``); this is the check against ``make run``.
"""
import argparse
import secrets
import sys
import time

import requests
from mastodon import Mastodon, MastodonNotFoundError, MastodonUnauthorizedError

PASSWORD = "smoke-test-pass-phrase"
SCOPES = ["read", "write", "follow"]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def _client(base: str, username: str) -> Mastodon:
    r = requests.post(f"{base}/v1/auth/register", json={"username": username, "password": PASSWORD}, timeout=10)
    assert r.status_code == 201, r.text
    client_id, client_secret = Mastodon.create_app("mastodon smoke", scopes=SCOPES, api_base_url=base)
    client = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=base)
    # Mastodon.py reads the OAuth metadata and refuses plain-http endpoints unless told: a local stack is http.
    client.log_in(username=username, password=PASSWORD, scopes=SCOPES, allow_http=base.startswith("http://"))
    return client


def _until(check, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the stack's URL, e.g. http://127.0.0.1:8000")
    base = parser.parse_args().base.rstrip("/")
    run = secrets.token_hex(3)
    reader, author = _client(base, f"mr_{run}"), _client(base, f"ma_{run}")
    print(f"signed in as mr_{run} and ma_{run} (apps registered, password grant)")

    author_account = reader.account_lookup(f"ma_{run}")
    assert reader.timeline_home() == []  # read once: the reader's timeline is cached from now on
    assert reader.account_follow(author_account.id).following
    media = author.media_post(PNG, mime_type="image/png")
    posted = [author.status_post("with a picture", media_ids=[media])]
    posted += [author.status_post(f"post {k} #smoke") for k in range(12)]
    assert requests.get(posted[0].media_attachments[0].url, timeout=10).content == PNG
    print(f"posted {len(posted)} statuses, the first with an image whose URL serves its bytes")

    newest = str(posted[-1].id)
    assert _until(lambda: reader.timeline_home(limit=1) and str(reader.timeline_home(limit=1)[0].id) == newest)
    seen, page = [], reader.timeline_home(limit=5)
    while page:
        seen += [str(status.id) for status in page]
        page = reader.fetch_next(page)
    assert seen == [str(status.id) for status in reversed(posted)], seen
    print(f"scrolled the home timeline to its end with fetch_next: {len(seen)} statuses, each once, newest first")

    oldest_page = reader.timeline_home(max_id=seen[-3], limit=2)
    newer = reader.fetch_previous(oldest_page)
    assert [str(s.id) for s in newer] == seen[-4:-2], [str(s.id) for s in newer]
    print("fetch_previous pulled the page just newer, without a gap")

    reader.markers_set("home", seen[4])
    assert str(reader.markers_get("home")["home"].last_read_id) == seen[4]
    print("marker set and read back")

    author.status_delete(posted[1].id)
    try:
        reader.status(posted[1].id)
        raise AssertionError("a deleted status was still served")
    except MastodonNotFoundError:
        pass
    assert str(posted[1].id) not in [str(s.id) for s in reader.timeline_home(limit=40)]
    print("deleted a status: 404, and gone from the follower's timeline")

    reader.revoke_access_token(allow_http=base.startswith("http://"))
    try:
        reader.timeline_home()
        raise AssertionError("a revoked token was still accepted")
    except MastodonUnauthorizedError:
        pass
    print("revoked the reader's token: 401 after")
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
