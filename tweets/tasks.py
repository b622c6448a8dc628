"""Celery tasks of tweets: they call a service and own their retry policy."""
from celery import shared_task

from media.storage import StorageUnavailable

from . import services

SWEEP_IDEMPOTENCY_KEYS_TASK = "tweets.sweep_idempotency_keys"


@shared_task(name=SWEEP_IDEMPOTENCY_KEYS_TASK, max_retries=0, acks_late=True)
def idempotency_keys_sweep_task() -> int:
    # A failed sweep is simply the next scheduled one's work.
    return services.idempotency_keys_sweep()


MEDIA_RECONCILE_TASK = "tweets.media_reconcile"


@shared_task(name=services.MEDIA_PLACE_TASK, acks_late=True, autoretry_for=(StorageUnavailable,),
             max_retries=5, retry_backoff=2, retry_backoff_max=60)
def media_place_task(user_ids: list[int]) -> int:
    # Sent after an account change commits; what its retries miss, the reconciler does.
    return services.media_place_for(user_ids=user_ids)


@shared_task(name=MEDIA_RECONCILE_TASK, max_retries=0, acks_late=True)
def media_reconcile_task() -> int:
    # Periodic: a failed run is the next one's work.
    return services.media_reconcile()
