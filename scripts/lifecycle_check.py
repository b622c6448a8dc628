"""Check the timeline's lifecycle over HTTP against a running stack, and print what it saw.

    .venv/bin/python scripts/lifecycle_check.py http://127.0.0.1:8000 [--flush-redis redis://127.0.0.1:6391/0]

Meant for a stack started with a tiny ``TIMELINE_CELEBRITY_THRESHOLD`` (3) and
``TIMELINE_MAX_ENTRIES`` (5) on a fresh database. A celebrity (3 followers)
and two plain authors post interleaved tweets; the reader's timeline must hold
them all, newest first, exactly once, scrolled with ``cursor`` past the cached
entries and refreshed with ``since``; an unfollow hides an author and a
re-follow brings the tweets back; a deleted tweet disappears. With
``--flush-redis`` (a Redis of the stack's own: it is FLUSHALLed!) every key is
dropped and the timelines must read the same, and a new tweet must still be
delivered. Exits non-zero if any check fails.
"""
import argparse
import secrets
import sys
import time

from smoke import Client, check


def scroll(client: Client, limit: int) -> tuple[list[str], bool]:
    """Every id from the first page to the last, and whether every page was well-formed."""
    seen, cursor, ok = [], None, True
    while True:
        r = client.call("GET", "/v1/timeline/home", params={"limit": limit} | ({"cursor": cursor} if cursor else {}))
        if r.status_code != 200:
            return seen, False
        body = r.json()
        ids = [t["tweet_id"] for t in body["data"]]
        ok &= [int(i) for i in ids] == sorted((int(i) for i in ids), reverse=True)
        seen += ids
        if body["next_cursor"] is None:
            return seen, ok and len(seen) == len(set(seen))
        ok &= bool(ids) and body["next_cursor"] == ids[-1]
        cursor = body["next_cursor"]


def refresh(client: Client, since: str, limit: int) -> tuple[list[str], bool]:
    """Every id newer than ``since``, fetched with since=prev_cursor, oldest page first."""
    seen, ok = [], True
    while True:
        r = client.call("GET", "/v1/timeline/home", params={"since": since, "limit": limit})
        if r.status_code != 200:
            return seen, False
        body = r.json()
        ids = [t["tweet_id"] for t in body["data"]]
        if not ids:
            return seen, ok and body["prev_cursor"] == since
        ok &= [int(i) for i in ids] == sorted((int(i) for i in ids), reverse=True) and body["prev_cursor"] == ids[0]
        seen = ids + seen
        since = body["prev_cursor"]


def wait_for(client: Client, expected: list[str], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if scroll(client, 100)[0] == expected:
            return True
        time.sleep(0.1)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", nargs="?", default="http://127.0.0.1:8000")
    parser.add_argument("--flush-redis", metavar="URL", help="FLUSHALL this Redis (the stack's own) and re-check")
    args = parser.parse_args()
    base, run, failures = args.base.rstrip("/"), secrets.token_hex(3), []

    print(f"→ registering 6 users (run {run}); the celebrity gets 3 followers")
    reader, celeb = Client(base, f"rd_{run}"), Client(base, f"ce_{run}")
    plain = [Client(base, f"pl{n}_{run}") for n in range(2)]
    fans = [Client(base, f"fa{n}_{run}") for n in range(2)]
    for author in (celeb, *plain):
        reader.call("POST", f"/v1/users/{author.user_id}/follow")
    for fan in fans:
        fan.call("POST", f"/v1/users/{celeb.user_id}/follow")
    reader.call("GET", "/v1/timeline/home")  # the reader is active: the timeline is cached

    print("→ 15 interleaved tweets: celebrity (pulled), two plain authors (pushed)")
    posters = [celeb, plain[0], plain[1]]
    posted, by_author = [], {c.user_id: [] for c in posters}
    for n in range(15):
        author = posters[n % 3]
        tweet_id = author.call("POST", "/v1/tweets", json={"content": f"tweet {n} of {run}"}).json()["tweet_id"]
        posted.append(tweet_id)
        by_author[author.user_id].append(tweet_id)
    expected = posted[::-1]
    check(failures, wait_for(reader, expected), "every tweet reaches the reader, celebrity's merged in id order")
    for limit in (1, 2, 4, 7):
        seen, ok = scroll(reader, limit)
        check(failures, ok and seen == expected,
              f"scrolling with limit={limit} past the 5 cached entries returns all 15 exactly once")
    seen, ok = refresh(reader, posted[0], 4)
    check(failures, ok and seen == expected[:-1], "since=prev_cursor from the oldest tweet returns the rest, gapless")
    fan_view, ok = scroll(fans[0], 3)
    check(failures, ok and fan_view == by_author[celeb.user_id][::-1], "a fan sees exactly the celebrity's tweets")

    print("→ unfollow, re-follow, delete")
    gone = set(by_author[plain[0].user_id])
    reader.call("DELETE", f"/v1/users/{plain[0].user_id}/follow")
    check(failures, scroll(reader, 3)[0] == [t for t in expected if t not in gone], "an unfollow hides the author")
    reader.call("POST", f"/v1/users/{plain[0].user_id}/follow")
    check(failures, scroll(reader, 3)[0] == expected, "a re-follow brings the tweets back")
    victim = by_author[celeb.user_id][2]
    check(failures, celeb.call("DELETE", f"/v1/tweets/{victim}").status_code == 204, "the author deletes a tweet")
    expected = [t for t in expected if t != victim]
    check(failures, scroll(reader, 4)[0] == expected and scroll(fans[1], 2)[0] == [
        t for t in by_author[celeb.user_id][::-1] if t != victim], "the deleted tweet is gone from every timeline")

    if args.flush_redis:
        import redis

        print(f"→ FLUSHALL on {args.flush_redis}")
        before = {c.user_id: scroll(c, 3) for c in (reader, celeb, *plain, *fans)}
        redis.Redis.from_url(args.flush_redis).flushall()
        after = {c.user_id: scroll(c, 3) for c in (reader, celeb, *plain, *fans)}
        check(failures, all(after[u] == before[u] and after[u][1] for u in before),
              "every timeline reads the same after the flush, with no error response")
        r = plain[1].call("POST", "/v1/tweets", json={"content": f"after the flush {run}"})
        check(failures, r.status_code == 201, "posting works after the flush")
        check(failures, wait_for(reader, [r.json()["tweet_id"], *expected], timeout=60),
              "and the new tweet reaches the reader")

    print("PASS" if not failures else f"FAIL: {len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
