"""Services send timeline tasks by name: every name they send, and every task beat schedules, is a registered task."""
from django.conf import settings

from config.celery_app import app
from timelines import services


def test_every_task_the_services_send_or_beat_schedules_is_registered():
    sent = {services.FANOUT_TASK, services.FANOUT_MANY_TASK, services.FANOUT_BATCH_TASK, services.RECONCILE_TASK,
            services.FOLLOW_UPDATE_TASK,
            services.FAILOVER_REPAIR_TASK}  # the last: beat's, on a Redis Cluster only
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert scheduled and sent | scheduled <= set(app.tasks)
