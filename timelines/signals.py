"""What the timelines app announces for observers outside the product (the benchmark, say).

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

fanout_batch_done = Signal()
