"""Celery tasks of media: they call a service and own their retry policy."""
from celery import shared_task

from . import services, storage

SWEEP_TASK = "media.sweep"


@shared_task(name=SWEEP_TASK, max_retries=0, acks_late=True)
def media_sweep_task() -> int:
    # A failed sweep is simply the next scheduled one's work; it also retries the
    # storage deletions still pending.
    return services.media_sweep() + services.media_purge()


@shared_task(name=services.PURGE_TASK, acks_late=True, autoretry_for=(storage.StorageUnavailable,),
             max_retries=5, retry_backoff=2, retry_backoff_max=60)
def media_purge_task() -> int:
    # Sent after a commit that let go of objects: retried a few times, then left to
    # the reconciler's periodic purge (the garbage rows stay until deleted).
    return services.media_purge()
