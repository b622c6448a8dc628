"""The fan-out publisher (``timelines.publisher``): posts hand their fan-out to a thread of
the process's own, which sends what queued together in one message. Every post still
reaches the timelines through a real worker, including a burst sent as ``fanout_many``."""
import os
import threading

import pytest
from django.db import connection

from tests.helpers import run_concurrently, scroll, wait_for
from timelines import services
from timelines.models import PendingFanout
from timelines.publisher import BATCH, Publisher


def test_ids_queued_while_a_send_is_under_way_go_out_together_in_batches_and_exit_waits_for_them():
    sent: list[list[int]] = []
    first_taken, release = threading.Event(), threading.Event()

    def send(tweet_ids: list[int]) -> None:
        sent.append(tweet_ids)
        first_taken.set()
        release.wait(5)

    publisher = Publisher(send)
    publisher.schedule(1)
    assert first_taken.wait(5)  # the thread is sending 1; what comes now waits for it
    for tweet_id in range(2, BATCH + 7):
        publisher.schedule(tweet_id)
    assert not publisher.flush(0.1)  # still under way
    release.set()
    assert publisher.flush(5)
    assert sent == [[1], list(range(2, BATCH + 2)), list(range(BATCH + 2, BATCH + 7))]


def test_a_send_that_fails_is_logged_and_the_next_ids_still_go(caplog):
    sent: list[list[int]] = []

    def send(tweet_ids: list[int]) -> None:
        if tweet_ids == [1]:
            raise ConnectionError("the broker is away")
        sent.append(tweet_ids)

    publisher = Publisher(send)
    publisher.schedule(1)
    assert publisher.flush(5)
    publisher.schedule(2)
    assert publisher.flush(5)
    assert sent == [[2]]
    assert "could not send the fan-outs of [1]" in caplog.text


def test_a_forked_process_sends_from_a_thread_of_its_own_and_not_what_its_parent_queued():
    read, write = os.pipe()
    publisher = Publisher(lambda tweet_ids: os.write(write, f"{os.getpid()}:{tweet_ids}\n".encode()))
    publisher.schedule(1)
    assert publisher.flush(5)
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's exit code is checked below
        publisher.schedule(2)
        os._exit(0 if publisher.flush(5) else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    os.close(write)
    lines = os.read(read, 4096).decode().split()
    assert lines == [f"{os.getpid()}:[1]", f"{child}:[2]"]


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_posts_reaches_every_timeline_through_a_real_worker(make_user, api, celery_worker):
    authors, follower = [make_user() for _ in range(4)], make_user()
    for author in authors:
        api(follower).post(f"/v1/users/{author.id}/follow")
    sent = []
    original = services._send_fanouts

    def counted(tweet_ids):
        sent.append(list(tweet_ids))
        original(tweet_ids)
    services._publisher._send = counted
    try:
        posted = run_concurrently([(api(author), "post", "/v1/tweets", {"data": {"content": f"burst {n}"},
                                                                        "format": "json"})
                                   for n, author in enumerate(authors * 5)])
        assert [status for status, _ in posted] == [201] * 20
        tweet_ids = {body["tweet_id"] for _, body in posted}
        wait_for(lambda: tweet_ids <= set(scroll(api(follower))), 60, what="every tweet in the timeline")
        wait_for(lambda: not PendingFanout.objects.filter(tweet_id__in=tweet_ids).exists(), 60,
                 what="the fan-outs done")
    finally:
        services._publisher._send = original
    assert sorted(t for batch in sent for t in batch) == sorted(int(t) for t in tweet_ids)
    connection.close()
