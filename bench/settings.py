"""Settings of the stack the benchmark measures: production's, plus the bench app.

The app brings the baseline endpoints (``/v1/bench/ping`` and
``/v1/bench/naive-timeline``, see ``bench/urls.py``) and the ``seed_bench``
command. No other settings module installs it, so production cannot serve the
baselines whatever its environment says.
"""
import os

from config.settings.production import *  # noqa: F401,F403
from config.settings.production import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "bench"]
ROOT_URLCONF = "bench.urls"

# The benchmark measures throughput, not the abuse limits: limits it never
# reaches, while each limited request still pays its Redis round trip as in
# production.
RATE_LIMIT_TWEETS = RATE_LIMIT_FOLLOWS = RATE_LIMIT_TIMELINE = "1000000000/s"
RATE_LIMIT_LOGIN = RATE_LIMIT_REGISTER = RATE_LIMIT_MEDIA = RATE_LIMIT_PROFILE = "1000000000/s"
RATE_LIMIT_OAUTH_CLIENT = RATE_LIMIT_APP_REGISTER = RATE_LIMIT_OAUTH_APP = "1000000000/s"

# Each fan-out records where its time went (queued, PostgreSQL, Redis, overhead):
# bench.fanout_timings receives the app's fanout_batch_done and keeps them in
# fot:{tweet_id}, read back by the bench's fan-out phase. The record costs a
# Redis round trip per batch that production does not pay, so the bench starts
# the worker with BENCH_FANOUT_TIMINGS=1 for its fan-out phase only.
BENCH_FANOUT_TIMINGS = os.environ.get("BENCH_FANOUT_TIMINGS") == "1"
