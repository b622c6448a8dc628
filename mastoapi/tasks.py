"""Celery tasks of the Mastodon layer: they call a function and own their retry policy."""
from celery import shared_task

from . import usage

COUNT_USAGE_TASK = "mastoapi.count_usage"


@shared_task(name=COUNT_USAGE_TASK, max_retries=0, acks_late=True)
def count_usage_task() -> None:
    # A failed count is simply the next scheduled one's work; the documents show the last counts meanwhile.
    usage.usage_count()
