"""gunicorn's settings beyond the Procfile's command line (``gunicorn -c config/gunicorn.py``).

Metrics: with ``PROMETHEUS_MULTIPROC_DIR`` set (the stack runner sets it), each
worker writes its samples to files there; when a worker exits, its files for
live gauges are marked dead so a scrape stops counting them. The access log is
``core.metrics.RequestMetricsMiddleware``'s line (one per request, with the
user), so gunicorn writes none of its own.

granian (the Procfile's ``WEB_SERVER=granian`` variant) has no such hooks,
and its workers leave without running Python's atexit. It starts each worker
(a respawned one too) from ``granian_application``, a ``--factory`` target
that does in the worker what ``post_worker_init`` does and, in place of
``child_exit``, marks dead the metrics of every process that wrote some and is
gone: a dead worker's live gauges count until the next worker starts (or the
runner clears the directory at the next start of the stack).
"""
import gc
import os

from prometheus_client import multiprocess

accesslog = None
# The master loads the application once and forks its workers from it: the
# modules' code and data are pages the workers share, not one copy each (a
# worker's PSS drops by about two thirds; RSS counts a shared page in every
# process that maps it, so it barely moves; docs/performance.md). Each worker
# still leases its own Snowflake id (post_worker_init) and makes its own
# connections: Django's, redis-py's and the fan-out publisher's are made anew
# in a process they were not made in.
preload_app = True


def on_starting(server):
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        os.makedirs(path, exist_ok=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(worker):
    # Lease a Snowflake worker id now and keep it renewed from a background thread,
    # so no post waits for a lease (tweets/snowflake.py).
    from tweets import snowflake

    snowflake.keep_leased()


def granian_application():
    """The WSGI application for one granian worker (``granian --factory``), with gunicorn's worker hooks."""
    from config.wsgi import application
    from tweets import snowflake

    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        os.makedirs(path, exist_ok=True)
        for pid in dead_writers(path):
            multiprocess.mark_process_dead(pid, path)
    snowflake.keep_leased()
    return application


def dead_writers(path: str) -> set[int]:
    """The pids of the processes whose live-gauge files are in ``path`` and that no longer run."""
    pids = set()
    for name in os.listdir(path):
        stem, _, pid = name.removesuffix(".db").rpartition("_")
        if stem.startswith("gauge_live") and pid.isdigit():
            pids.add(int(pid))
    return {pid for pid in pids if not _running(pid)}


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def when_ready(server):
    """The application is loaded (``preload_app``) and no worker forked yet: the objects
    made so far go to the collector's permanent generation, so a worker's collections do
    not write to them and the pages stay shared; a database connection opened while
    loading is closed, so no worker inherits its socket."""
    from django.db import connections

    connections.close_all()
    gc.freeze()
