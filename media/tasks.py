"""Celery tasks of media: they call a service and own their retry policy."""
from celery import shared_task

from . import services

SWEEP_TASK = "media.sweep"


@shared_task(name=SWEEP_TASK, max_retries=0, acks_late=True)
def media_sweep_task() -> int:
    # A failed sweep is simply the next scheduled one's work.
    return services.media_sweep()
