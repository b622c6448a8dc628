"""What the timelines app announces: ``tweet_delivered`` for the live streams (``streaming``),
``fanout_batch_done`` for observers outside the product (the benchmark, say).

``tweet_delivered`` is sent by ``services`` once a tweet has been written into
the timelines of a range of its author's followers, with keyword arguments
``tweet_id``, ``author_id``, ``lo`` and ``hi``: the followers with ids in
``(lo, hi]`` (``hi`` None: no upper bound) now have it, and with ``lo == 0`` the
author too. A pushed tweet's fan-out sends it once a batch; a pulled (celebrity)
tweet's once, with ``(0, None)``: its followers read it from the author's list.
It is sent after the write, so whoever hears of it and then reads the timeline
finds it, and once a batch: a run repeated after its record failed (PostgreSQL
lost as it deleted the pending row) finds the first run's mark in Redis and
sends nothing (``services._announce``). Were the marks lost with Redis, a
batch run again sends it again: receivers de-duplicate.

``fanout_batch_done`` is sent by ``services`` each time one batch of a pushed
fan-out has been written, with keyword arguments ``tweet_id``, ``started``
(``time.time()`` when the task began), ``pg_ms`` (reading the followers),
``redis_ms`` (the live filter and the timeline writes), ``followers``,
``addressed`` (the timelines the insert script was given), ``written`` and
``last`` (this batch finished the fan-out). With no receiver connected, sending
it costs a check of an empty list. A receiver runs inside the fan-out task, so
it should be quick; one that raises is logged and the fan-out goes on.
"""
from django.dispatch import Signal

tweet_delivered = Signal()
fanout_batch_done = Signal()
