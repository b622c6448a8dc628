"""gunicorn's settings beyond the Procfile's command line (``gunicorn -c config/gunicorn.py``).

Metrics: with ``PROMETHEUS_MULTIPROC_DIR`` set (the stack runner sets it), each
worker writes its samples to files there; when a worker exits, its files for
live gauges are marked dead so a scrape stops counting them. The access log is
``core.metrics.RequestMetricsMiddleware``'s line (one per request, with the
user), so gunicorn writes none of its own.
"""
import os

from prometheus_client import multiprocess

accesslog = None


def on_starting(server):
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        os.makedirs(path, exist_ok=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    # Lease a Snowflake worker id now and keep it renewed, so this worker can
    # post through a Redis outage even if it has not posted yet (tweets/snowflake.py).
    from tweets import snowflake

    snowflake.keep_leased()
