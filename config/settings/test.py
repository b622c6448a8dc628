"""Settings for the test suite.

Tests share the developer's PostgreSQL server (pytest-django creates its own
``test_*`` database) and Redis server, under a key prefix of their own; each test
then narrows it further (see ``tests/conftest.py``).
"""
import os

from .base import *  # noqa: F401,F403
from .base import CACHES, CELERY_BROKER_TRANSPORT_OPTIONS, CELERY_BROKER_URL, celery_task_queues

REDIS_KEY_PREFIX = f"test{os.getpid()}:"
CACHES["default"]["KEY_PREFIX"] = REDIS_KEY_PREFIX + "cache"
CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"] = REDIS_KEY_PREFIX
CELERY_TASK_DEFAULT_QUEUE = f"timeline-test{os.getpid()}"
CELERY_TASK_QUEUES = celery_task_queues(CELERY_TASK_DEFAULT_QUEUE, CELERY_BROKER_URL)
# Unit tests run tasks inline; tests marked ``celery_worker`` switch this off and
# consume real broker messages with a real worker.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", "mastoapi.hashers.ClientSecretHasher"]
# Limits no ordinary test reaches (tests of the limits set small ones through
# the ``settings`` fixture); the throttles still run, and count, on every request.
RATE_LIMIT_TWEETS = RATE_LIMIT_FOLLOWS = RATE_LIMIT_TIMELINE = "1000000/min"
RATE_LIMIT_LOGIN = RATE_LIMIT_REGISTER = RATE_LIMIT_MEDIA = RATE_LIMIT_PROFILE = "1000000/min"
RATE_LIMIT_OAUTH_CLIENT = RATE_LIMIT_APP_REGISTER = RATE_LIMIT_OAUTH_APP = "1000000/min"
# Each /readyz checks afresh (tests change a dependency's address between two
# probes); the test of the cache sets a period.
READYZ_CACHE_SECONDS = 0
