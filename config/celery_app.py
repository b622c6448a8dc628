"""The Celery application: reads ``CELERY_*`` Django settings and autodiscovers each app's tasks."""
import os

from celery import Celery
from celery.signals import celeryd_init, task_postrun, task_prerun, worker_process_shutdown, worker_shutdown
from prometheus_client import multiprocess

# Production unless told otherwise, as manage.py and the web server: development is opt-in.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("timeline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@celeryd_init.connect
def _yield_to_the_web(**kwargs):
    """Fan-out is background work: on a machine shared with the web workers, the
    worker runs at a lower priority (``WORKER_NICE``), so a burst of deliveries
    takes the cores the readers leave idle instead of stretching their latency.
    Set in the ``celery worker`` command's main thread before its pool starts:
    prefork's children (the default pool) and the threads pool's threads
    inherit it. An in-process test worker sends no ``celeryd_init``."""
    from django.conf import settings

    if settings.WORKER_NICE:
        os.nice(settings.WORKER_NICE)


@task_prerun.connect
@task_postrun.connect
def _database_connections_as_around_a_request(sender=None, **kwargs):
    """Around each task, what Django does around each request: close a database
    connection that failed or outlived ``CONN_MAX_AGE``; the others are kept, and
    health-checked at their next use (``CONN_HEALTH_CHECKS``). Celery's fixup no
    longer closes them all each time (``CELERY_DB_REUSE_MAX``)."""
    if getattr(getattr(sender, "request", None), "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


@worker_process_shutdown.connect
@worker_shutdown.connect
def _metrics_process_dead(pid=None, **kwargs):
    """A worker process's live-gauge samples stop counting when it exits (its counters stay):
    a prefork child's, or the worker's own (the threads pool runs its tasks there)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid or os.getpid())
