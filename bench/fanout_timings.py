"""Where each fan-out spent its time, as the benchmark records it from the app's ``fanout_batch_done``.

``record`` receives ``timelines.signals.fanout_batch_done`` in the worker
processes (``BenchConfig.ready`` connects it when ``BENCH_FANOUT_TIMINGS`` is on,
as ``bench.settings`` has it) and adds each batch's figures to its fan-out's
``fot:{tweet_id}`` hash (an hour); ``fanout_timings`` reads them back. The
product carries none of this: without a receiver, the signal costs nothing.
"""
import time

from core import redis as core_redis
from timelines.store import keys
from tweets import snowflake

TTL = 3600
_COUNTS = ("followers", "addressed", "written", "batches")


def _key(tweet_id: int) -> str:
    return keys.prefixed(f"fot:{tweet_id}")


def record(sender, *, tweet_id: int, started: float, pg_ms: float, redis_ms: float, followers: int,
           addressed: int, written: int, last: bool, **kwargs) -> None:
    """Add one batch's timings to its fan-out's (summed): ``queued_ms`` from the first
    batch recorded, ``done_ms`` from the batch that finished the fan-out."""
    now = time.time()
    posted_ms = snowflake.timestamp_ms_of(tweet_id)
    key = _key(tweet_id)
    pipe = core_redis.connection().pipeline(transaction=False)
    for field, value in {"pg_ms": pg_ms, "redis_ms": redis_ms, "followers": followers, "addressed": addressed,
                         "written": written, "batches": 1, "busy_ms": 1000 * (now - started)}.items():
        pipe.hincrbyfloat(key, field, value)
    pipe.hsetnx(key, "queued_ms", 1000 * started - posted_ms)
    if last:
        pipe.hset(key, "done_ms", 1000 * now - posted_ms)
    pipe.expire(key, TTL)
    pipe.execute()


def fanout_timings(*, tweet_id: int) -> dict | None:
    """The recorded timings of a tweet's fan-out, in milliseconds: ``queued_ms`` from the
    post to the coordinator starting, ``pg_ms`` reading followers, ``redis_ms`` writing
    timelines, ``overhead_ms`` the rest of the workers' time (tasks, bookkeeping),
    ``done_ms`` from the post to the last batch written; and ``followers``, ``addressed``
    (the timelines the insert script was given: the followers who may have one, and the
    author), ``written``, ``batches``. None if nothing was recorded (or not yet finished)."""
    raw = core_redis.connection().hgetall(_key(tweet_id))
    timings = {k.decode(): float(v) for k, v in raw.items()}
    if "done_ms" not in timings:
        return None
    timings["overhead_ms"] = timings.pop("busy_ms") - timings["pg_ms"] - timings["redis_ms"]
    return timings | {k: int(timings[k]) for k in _COUNTS}
