"""The timeline's Prometheus series: fan-out, the reconciler, rebuilds and the read path's sources.

Defined once here, incremented where the thing happens (``services``,
``rebuilds``, ``selectors``), served by ``core.metrics``. Each costs one
in-process increment (a file write in the stack's multiprocess mode), never a
round trip. ``docs/operations.md`` says what each means and what to alert on.
"""
from prometheus_client import Counter, Histogram

FANOUT_LAG = Histogram(
    "timeline_fanout_lag_seconds",
    "Seconds from a tweet's creation (its Snowflake id's timestamp) to the last batch of its fan-out "
    "written, observed once per completed fan-out; mode is push (followers' timelines) or pull (a celebrity's "
    "own list).",
    ["mode"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0),
)

FANOUT_BATCH_ADDRESSED = Histogram(
    "timeline_fanout_batch_size",
    "Timelines addressed by one fan-out batch (its followers, and the author with the first batch); "
    "only the cached ones are written.",
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)

FANOUT_DELIVERIES = Counter(
    "timeline_fanout_deliveries_total",
    "Tweet ids written into cached timelines by fan-out (an id already there, or an uncached timeline, "
    "is not a delivery).",
)

RECONCILER_RESTARTS = Counter(
    "timeline_fanout_reconciler_restarts_total",
    "Fan-outs the reconciler found late and sent again.",
)

REBUILDS = Counter(
    "timeline_rebuilds_total",
    "Caches filled from PostgreSQL on a miss or by an operator: a user's timeline list, a celebrity's "
    "pulled list, a user's follow graph.",
    ["kind"],
)

FAILOVER_SLOTS_REPAIRED = Counter(
    "timeline_failover_slots_repaired_total",
    "Redis Cluster slots whose master changed (a failover, a migration), whose cached timelines and pulled "
    "lists were dropped to be rebuilt from PostgreSQL.",
)

PAGES = Counter(
    "timeline_pages_total",
    "Home-timeline pages served.",
)

POSTGRES_PAGES = Counter(
    "timeline_postgres_pages_total",
    "Home-timeline pages that read tweet ids from PostgreSQL past the cached lists (deep scrolls, "
    "pull-to-refresh below the cache).",
)
