"""The fan-out tasks of this process's posts, sent to the broker from a thread of its own.

A post answers once its statement has committed; handing its fan-out to the
broker (a round trip, and kombu's message building) is not on that path any
more. ``Publisher.schedule`` queues the tweet id and wakes the process's
publisher thread (started on first use in each process, so after a fork),
which hands what has queued to ``send``, up to ``BATCH`` ids at a time:
``services`` sends one ``timelines.fanout`` message for a lone tweet and one
``timelines.fanout_many`` for tweets that queued together, so a burst of posts
costs a few messages, not one each.

Nothing is lost if the message is never sent (the process killed in between,
the broker down): the tweet's ``PendingFanout`` row was committed with it, and
the reconciler sends what is still pending after
``FANOUT_RECONCILE_AFTER_SECONDS``. At exit the queue is drained (``atexit``,
within ``FLUSH_SECONDS``).
"""
import collections
import logging
import os
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

BATCH = 50  # tweet ids handed to ``send`` at once, at most
FLUSH_SECONDS = 5.0  # how long exit waits for the queue to drain


class Publisher:
    """Sends ``send(tweet_ids)`` for the queued tweet ids, from a daemon thread."""

    def __init__(self, send: Callable[[list[int]], None]):
        self._send = send
        self._queue: collections.deque[int] = collections.deque()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._pid = 0  # the process whose thread runs; another (a fork) starts its own
        self._start = threading.Lock()

    def schedule(self, tweet_id: int) -> None:
        if self._pid != os.getpid():
            self._start_thread()
        self._idle.clear()
        self._queue.append(tweet_id)
        self._wake.set()

    def _start_thread(self) -> None:
        with self._start:
            if self._pid == os.getpid():
                return
            self._queue.clear()  # a parent's, copied by the fork: the parent sends those
            threading.Thread(target=self._run, daemon=True, name="fanout-publisher").start()
            self._pid = os.getpid()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
                try:
                    self._send(batch)
                except Exception:  # noqa: BLE001 - the reconciler sends what is still pending
                    logger.exception("could not send the fan-outs of %s", batch)
            if not self._queue:
                self._idle.set()

    def flush(self, timeout: float = FLUSH_SECONDS) -> bool:
        """Wait until what was queued has been handed on (True), at most ``timeout`` seconds
        (``services`` registers it with ``atexit``)."""
        if self._pid != os.getpid():
            return True
        deadline = time.monotonic() + timeout
        while not self._idle.wait(0.05):
            if time.monotonic() >= deadline:
                return False
        return True
