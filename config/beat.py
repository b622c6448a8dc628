"""The beat's own Celery app: it only sends the schedule's tasks, by name.

Beat needs the broker's settings and the schedule (``CELERY_BEAT_SCHEDULE``),
both plain Django settings; it runs none of the tasks. So this app reads the
settings without Celery's Django fixup, which would ``django.setup()`` the
whole project (models, admin, the text parser, the S3 client) into a process
that never uses them: beat stays at about a third of a worker's memory
(docs/performance.md). A scheduled task unknown to this app is sent by name
(``Scheduler.apply_async`` falls back to ``send_task``), to the same queue the
worker consumes, with the same routing as every other message.
"""
import os
from pathlib import Path

from celery import Celery
from celery.beat import PersistentScheduler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

app = Celery("timeline", fixups=[])
app.config_from_object("django.conf:settings", namespace="CELERY")


class BeatScheduler(PersistentScheduler):
    """Celery's file-backed beat scheduler, which also creates the file's directory
    (``.data/`` on a fresh checkout, where the Procfile's beat keeps it)."""

    def setup_schedule(self):
        # Set by PersistentScheduler.__init__; celery-types does not declare it.
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)  # type: ignore[attr-defined]
        super().setup_schedule()
