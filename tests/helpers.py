"""Helpers shared by several test files (fixtures that need no arguments live in conftest.py)."""
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import NoReturn

import pytest
from celery import current_app
from redis.connection import Connection

from stack.common import free_port  # noqa: F401 - the tests' name for it


def under_ci() -> bool:
    """``CI=true``: the machine has every tool a test may need (RabbitMQ, PostgreSQL's
    server binaries, Chromium), as this project's CI machines do."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def tool_missing(reason: str) -> NoReturn:
    """A tool the test needs is missing (``reason`` says which, and how to get it): the
    test skips, and the run's summary lists it with the reason. Under ``CI=true`` it
    fails instead, so that a test never silently stops running where it must run."""
    if under_ci():
        pytest.fail(f"{reason} (CI=true: every tool must be there, so this is a failure, not a skip)",
                    pytrace=False)
    pytest.skip(reason)


def hold_timeline_tasks(monkeypatch, queue: list) -> list:
    """Stand in for the broker: every timeline task sent is appended to ``queue`` as
    ``(task, args)`` instead, to be run (``task.run(*args)``) when, as often and in
    whatever order the test likes."""
    from timelines import services

    monkeypatch.setattr(services, "_send", lambda name, *args: queue.append((current_app.tasks[name], args)))
    return queue


def post_tweet(client, content: str):
    """``POST /v1/tweets`` with ``content``: the response, whatever it is."""
    return client.post("/v1/tweets", {"content": content}, format="json")


def post(client, content: str = "hello") -> str:
    """Post a tweet over the API, which must take it; its id."""
    r = post_tweet(client, content)
    assert r.status_code == 201, r.content
    return r.json()["tweet_id"]


def page(client, **params) -> dict:
    """One page of the client's home timeline."""
    r = client.get("/v1/timeline/home", params)
    assert r.status_code == 200, r.content
    return r.json()


def ids(client, **params) -> list[str]:
    """The tweet ids of one page of the client's home timeline."""
    return [t["tweet_id"] for t in page(client, **params)["data"]]


def scroll(client, limit: int = 20) -> list[str]:
    """Every tweet id from the first page to the last, following ``next_cursor`` and
    checking each page (newest first, not empty unless last, no tweet twice)."""
    return [tweet_id for one in scroll_pages(client, limit) for tweet_id in one]


def scroll_pages(client, limit: int = 20) -> list[list[str]]:
    """:func:`scroll`, page by page."""
    pages, seen, cursor = [], set(), None
    while True:
        body = page(client, limit=limit, **({"cursor": cursor} if cursor else {}))
        found = [t["tweet_id"] for t in body["data"]]
        assert [int(i) for i in found] == sorted((int(i) for i in found), reverse=True)
        # Each page lies below its cursor, so a scroll always moves on (and ends).
        assert cursor is None or all(int(i) < int(cursor) for i in found), f"a page not below cursor={cursor}"
        assert seen.isdisjoint(found), "a tweet came twice"
        seen.update(found)
        pages.append(found)
        if body["next_cursor"] is None:
            return pages
        assert found, "a non-last page must not be empty"
        assert body["next_cursor"] == found[-1]
        cursor = body["next_cursor"]


def cached(key: str) -> list[str]:
    """What a Redis list of ids (``store.timeline_key(user_id)``, say) holds, head first
    (``"0"``: the sentinel that closes a complete list)."""
    from core.redis import connection

    return [x.decode() for x in connection().lrange(key, 0, -1)]


def wait_for(predicate, timeout: float = 15.0, *, what: str = "the condition", check=None, ignore=(),
             details=None, interval: float = 0.05):
    """Poll ``predicate`` until it returns something true, and return that.

    ``check`` runs before every poll (to give up early: a process that died,
    say); exceptions of the types in ``ignore`` count as "not yet". After
    ``timeout`` seconds, fail with ``what`` and ``details()`` (logs, say).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check is not None:
            check()
        try:
            result = predicate()
        except ignore:
            result = None
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}" + (f"\n{details()}" if details else ""))


def drop_broker_pools() -> None:
    """Forget the Celery app's broker connection and producer pools (they are kept per URL
    and transport options), so the next task sent connects as configured now."""
    from config.celery_app import app

    app._pool = None
    app.amqp._producer_pool = None


def run_concurrently(calls: list[tuple]) -> list:
    """Run each ``(client, method, path[, kwargs])`` in its own thread, all released at
    once; the ``(status, json)`` of each (or the exception it raised), in order."""
    from django.db import connection

    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def worker(i, client, method, path, kwargs=None):
        try:
            barrier.wait(timeout=10)
            r = getattr(client, method)(path, **(kwargs or {}))
            results[i] = (r.status_code, r.json())
        except Exception as exc:  # surfaces in the caller's assertion
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, *call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return results


def form_fields(html: str, form_id: str) -> dict[str, list[str]]:
    """What a browser would submit for the form ``form_id`` of a page, as loaded: every
    named input, ticked box, selected option and text area (for ``Client.post``)."""
    from html.parser import HTMLParser

    class FormParser(HTMLParser):
        def __init__(self):
            super().__init__()
            self.fields, self.inside, self.select, self.textarea = {}, False, None, None

        def add(self, name, value):
            self.fields.setdefault(name, []).append(value)

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "form":
                self.inside = a.get("id") == form_id
            elif not self.inside or "disabled" in a:
                return
            elif tag == "input" and a.get("name") and a.get("type") not in ("submit", "button", "file"):
                if a.get("type") not in ("checkbox", "radio"):
                    self.add(a["name"], a.get("value", ""))
                elif "checked" in a:
                    self.add(a["name"], a.get("value", "on"))
            elif tag == "select":
                self.select = a.get("name")
            elif tag == "option" and self.select and "selected" in a:
                self.add(self.select, a.get("value", ""))
            elif tag == "textarea":
                self.textarea = a.get("name")
                self.fields[self.textarea] = [""]

        def handle_data(self, data):
            if self.textarea:
                self.fields[self.textarea][0] += data

        def handle_endtag(self, tag):
            if tag == "form":
                self.inside = False
            elif tag == "select":
                self.select = None
            elif tag == "textarea":
                self.textarea = None

    parser = FormParser()
    parser.feed(html)
    return parser.fields


def on_one_redis_server(test):
    """Mark a test that breaks the one-server Redis client (its breaker, its pool, its
    address): under ``TEST_REDIS_CLUSTER=1`` it is skipped, as a cluster's client has
    none of these; the cluster's own faults are tested in ``test_redis_cluster.py``."""
    return pytest.mark.skipif(os.environ.get("TEST_REDIS_CLUSTER", "").lower() in ("1", "true", "yes"),
                              reason="breaks the one-server Redis client")(test)


def stop_stack(proc, timeout: float = 60) -> None:
    """Stop a stack started with ``python -m stack run`` in a session of its own: SIGTERM,
    and if it has not stopped after ``timeout`` seconds, SIGKILL its whole process group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def redis_round_trips(monkeypatch, note: Callable[[Connection, object], object] = lambda connection, command: command
                      ) -> list:
    """Record every request sent to Redis (a command, or a whole pipeline; on a cluster, a
    pipeline's share for one node): one round trip each, noted as ``note`` says (the command)."""
    sent = []
    real = Connection.send_packed_command

    def counted(self, command, check_health=True):
        sent.append(note(self, command))
        return real(self, command, check_health)

    monkeypatch.setattr(Connection, "send_packed_command", counted)
    return sent
