"""The Celery application: reads ``CELERY_*`` Django settings and autodiscovers each app's tasks."""
import os
from pathlib import Path

from celery import Celery
from celery.beat import PersistentScheduler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("timeline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()



class BeatScheduler(PersistentScheduler):
    """Celery's file-backed beat scheduler, which also creates the file's directory
    (``.data/`` on a fresh checkout, where the Procfile's beat keeps it)."""

    def setup_schedule(self):
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)
        super().setup_schedule()
