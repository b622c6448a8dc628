"""Drive a running stack over HTTP as a client would, and print what it saw.

    .venv/bin/python scripts/smoke.py http://127.0.0.1:8000

Registers a reader and six authors (names unique to this run), has the reader
follow them, posts 150 tweets from six concurrent clients, measures how long
each tweet takes to show up in the reader's timeline, scrolls the whole
timeline with ``next_cursor``, deletes a tweet, sends a few bad inputs, does
the media round trip (presign, upload the bytes to object storage, post, read
back) with each refused attachment, and posts with an Idempotency-Key twice,
in turn and at once. No one posts more than 30 tweets, the default per-minute
limit; a 429 is waited out (its Retry-After, up to a minute) and tried again,
as a client should, so a second run soon after, or a stack with tighter
limits, passes too, slower.
Exits non-zero if any check fails.
"""
import argparse
import base64
import secrets
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import requests

PASSWORD = "smoke-test-pass-phrase"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


MAX_WAIT_SECONDS = 60  # the longest Retry-After a call waits out; a longer one is answered as it is


class Client:
    def __init__(self, base: str, username: str):
        self.base, self.session = base, requests.Session()
        r = self.call("POST", "/v1/auth/register", json={"username": username, "password": PASSWORD})
        assert r.status_code == 201, r.text
        self.user_id = r.json()["user_id"]
        token = self.call("POST", "/v1/auth/token", json={"username": username, "password": PASSWORD})
        assert token.status_code == 200, token.text
        self.session.headers["Authorization"] = f"Bearer {token.json()['access']}"

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        while True:
            r = self.session.request(method, f"{self.base}{path}", timeout=30, **kwargs)
            wait = int(r.headers.get("Retry-After", "0")) if r.status_code == 429 else 0
            if not 0 < wait <= MAX_WAIT_SECONDS:
                return r
            print(f"     (rate limited: {method} {path}, waiting {wait} s as Retry-After says)")
            time.sleep(wait)


def check(failures: list[str], ok: bool, what: str) -> None:
    print(f"  {'ok ' if ok else 'FAIL'} {what}")
    if not ok:
        failures.append(what)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", nargs="?", default="http://127.0.0.1:8000")
    base = parser.parse_args().base.rstrip("/")
    run = secrets.token_hex(3)
    failures: list[str] = []

    print(f"→ registering 7 users (run {run})")
    reader = Client(base, f"rd_{run}")
    authors = [Client(base, f"au{n}_{run}") for n in range(6)]
    for author in authors:
        reader.call("POST", f"/v1/users/{author.user_id}/follow")
    reader.call("GET", "/v1/timeline/home")  # the reader is active: the timeline is cached

    print("→ posting 150 tweets from 6 concurrent clients, watching the reader's timeline")
    posted_at: dict[int, float] = {}
    seen_at: dict[int, float] = {}

    def post(author: Client) -> list[int]:
        ids = []
        for n in range(25):
            r = author.call("POST", "/v1/tweets", json={"content": f"smoke {n} #run{run}"})
            ids.append(int(r.json()["tweet_id"]))
            posted_at[ids[-1]] = time.monotonic()
        return ids

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(post, a) for a in authors]
        while not all(f.done() for f in futures) or len(seen_at) < len(posted_at):
            page = reader.call("GET", "/v1/timeline/home", params={"limit": 100}).json()
            now = time.monotonic()
            for t in page["data"]:
                seen_at.setdefault(int(t["tweet_id"]), now)
            if all(f.done() for f in futures) and now - max(posted_at.values()) > 15:
                break
            time.sleep(0.05)
        per_author = [f.result() for f in futures]
    ids = [i for batch in per_author for i in batch]
    check(failures, len(set(ids)) == 150, "150 distinct tweet ids")
    check(failures, all(batch == sorted(batch) for batch in per_author), "each author's ids increase")
    delays = sorted(seen_at[i] - posted_at[i] for i in ids if i in seen_at and i in posted_at)
    check(failures, len(delays) >= 100, f"{len(delays)} of the newest tweets seen in the reader's first 100")
    if delays:
        print(f"     post → visible: median {statistics.median(delays) * 1000:.0f} ms, "
              f"max {delays[-1] * 1000:.0f} ms (polling every 50 ms)")

    print("→ scrolling the whole timeline with next_cursor (limit 17)")
    scrolled, cursor, pages = [], None, 0
    while True:
        params = {"limit": 17} | ({"cursor": cursor} if cursor else {})
        body = reader.call("GET", "/v1/timeline/home", params=params).json()
        scrolled += [int(t["tweet_id"]) for t in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    check(failures, scrolled == sorted(set(ids), reverse=True), f"{len(scrolled)} tweets in {pages} pages, "
          "newest first, each exactly once")

    print("→ deleting one tweet")
    victim = ids[0]
    check(failures, authors[1].call("DELETE", f"/v1/tweets/{victim}").status_code == 403, "a stranger gets 403")
    check(failures, authors[0].call("DELETE", f"/v1/tweets/{victim}").status_code == 204, "the author gets 204")
    page = reader.call("GET", "/v1/timeline/home", params={"limit": 100}).json()
    check(failures, all(int(t["tweet_id"]) != victim for t in page["data"]), "gone from the timeline")

    print("→ bad input")
    for method, path, kwargs, status in [
        ("GET", "/v1/timeline/home", {"params": {"limit": 0}}, 400),
        ("GET", "/v1/timeline/home", {"params": {"cursor": "abc"}}, 400),
        ("POST", "/v1/tweets", {"json": {"content": "a" * 281}}, 400),
        ("POST", "/v1/tweets", {"data": "{not json", "headers": {"Content-Type": "application/json"}}, 400),
        ("POST", f"/v1/users/{reader.user_id}/follow", {}, 400),
        ("GET", "/v1/tweets/1", {}, 404),
    ]:
        got = reader.call(method, path, **kwargs).status_code
        check(failures, got == status, f"{method} {path} {str(kwargs or '')[:60]} → {got}")
    check_media(failures, reader, authors)
    check_idempotency(failures, reader)  # the reader has posted least
    print("all checks passed" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


def presign_and_upload(client: Client, body: bytes, size: int | None = None, **fields) -> str:
    """Presign ``size`` bytes of PNG and upload ``body`` to object storage; the media id."""
    r = client.call("POST", "/v1/media", json={"content_type": "image/png", "size_bytes": size or len(body)})
    assert r.status_code == 201, r.text
    upload = r.json()["upload"]
    requests.post(upload["url"], data={**upload["fields"], **fields}, files={"file": ("f.png", body)}, timeout=30)
    return r.json()["media_id"]


def check_media(failures: list[str], reader: Client, authors: list[Client]) -> None:
    print("→ media: presign, upload straight to object storage, post, read back")
    # The author has posted 25 tweets: the refused attachments are mostly another's
    # posts, so that no one goes over 30 (the default limit a minute).
    author, other = authors[0], authors[1]
    media_id = presign_and_upload(author, PNG)
    r = author.call("POST", "/v1/tweets", json={"content": "", "media_ids": [media_id]})
    check(failures, r.status_code == 201, f"a tweet with only an image → {r.status_code}")
    tweet_id = r.json().get("tweet_id")
    shown = reader.call("GET", f"/v1/tweets/{tweet_id}").json().get("media", [])
    check(failures, [m["media_id"] for m in shown] == [media_id], "the tweet carries the media")
    check(failures, bool(shown) and requests.get(shown[0]["url"], timeout=30).content == PNG,
          "its URL serves the uploaded bytes")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        page = reader.call("GET", "/v1/timeline/home", params={"limit": 5}).json()["data"]
        if page and page[0]["tweet_id"] == tweet_id:
            break
        time.sleep(0.1)
    check(failures, bool(page) and page[0]["tweet_id"] == tweet_id and page[0]["media"] == shown,
          "the follower's timeline shows it with the media")
    never_uploaded = other.call("POST", "/v1/media", json={"content_type": "image/png", "size_bytes": 10})
    refused = [
        ("an upload larger than presigned", other, presign_and_upload(other, PNG, size=10), 400),
        ("an upload of another type", other, presign_and_upload(other, PNG, **{"Content-Type": "image/gif"}), 400),
        ("someone else's media", other, presign_and_upload(author, PNG), 400),
        ("media never uploaded", other, never_uploaded.json()["media_id"], 400),
        ("media already on a tweet", author, media_id, 409),
    ]
    for what, poster, refused_id, status in refused:
        got = poster.call("POST", "/v1/tweets", json={"content": what, "media_ids": [refused_id]}).status_code
        check(failures, got == status, f"{what} → {got}")


def check_idempotency(failures: list[str], author: Client) -> None:
    print("→ Idempotency-Key: the same key twice in turn, then four times at once")
    key = {"Idempotency-Key": secrets.token_hex(8)}
    first = author.call("POST", "/v1/tweets", json={"content": "once"}, headers=key)
    again = author.call("POST", "/v1/tweets", json={"content": "once"}, headers=key)
    check(failures, (first.status_code, again.status_code) == (201, 200) and first.json() == again.json(),
          f"{first.status_code} then {again.status_code}, the same tweet")
    key = {"Idempotency-Key": secrets.token_hex(8)}
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: author.call("POST", "/v1/tweets", json={"content": "race"}, headers=key),
                                range(4)))
    check(failures, sorted(a.status_code for a in answers) == [200, 200, 200, 201]
          and len({a.json()["tweet_id"] for a in answers}) == 1, "at once: one 201, three 200, one tweet")


if __name__ == "__main__":
    sys.exit(main())
