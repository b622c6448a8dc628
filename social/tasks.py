"""Celery tasks of the social app: they call a service and own their retry policy."""
from celery import shared_task

from . import services

REPLAY_ACCOUNT_CHANGES_TASK = "social.replay_account_changes"


@shared_task(name=REPLAY_ACCOUNT_CHANGES_TASK, max_retries=0, acks_late=True)
def account_changes_replay_task() -> int:
    # Beat sends it every few seconds: a failed run is the next one's work.
    return services.account_changes_replay()
