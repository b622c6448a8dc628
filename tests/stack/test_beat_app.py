"""beat's own Celery app (config/beat.py) sends the schedule without loading the project."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
from config.beat import app
app.loader.init_worker()  # what `celery beat` runs before it schedules (Beat.init_loader)
app.finalize()
from django.apps import apps
print(json.dumps({"apps_ready": apps.ready, "schedule": sorted(app.conf.beat_schedule),
                  "queue": app.conf.task_default_queue,
                  "loaded": sorted(m for m in ("social.models", "tweets.models", "boto3", "twitter_text")
                                   if m in sys.modules)}))
"""


def test_beat_reads_the_schedule_without_loading_the_project(settings):
    """The old beat (``-A config.celery_app``) ran ``django.setup()`` here: models, admin, S3 client."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))}
    env |= {"DJANGO_SETTINGS_MODULE": "config.settings.production", "SECRET_KEY": "s3cr3t-" * 8,
            "CELERY_QUEUE": "beat-probe"}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["loaded"] == [] and seen["apps_ready"] is False
    assert seen["schedule"] == sorted(settings.CELERY_BEAT_SCHEDULE)
    assert seen["queue"] == "beat-probe"  # the worker's settings: its messages go where the worker consumes
