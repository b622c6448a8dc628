"""Celery tasks of tweets: they call a service and own their retry policy."""
from celery import shared_task

from . import services

SWEEP_IDEMPOTENCY_KEYS_TASK = "tweets.sweep_idempotency_keys"


@shared_task(name=SWEEP_IDEMPOTENCY_KEYS_TASK, max_retries=0, acks_late=True)
def idempotency_keys_sweep_task() -> int:
    # A failed sweep is simply the next scheduled one's work.
    return services.idempotency_keys_sweep()
