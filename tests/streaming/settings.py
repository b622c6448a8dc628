"""Settings of the stream process the streaming tests start: the test settings (the
same secret key, so it takes the test's JWTs), on the test's database and Redis key
prefix, given in the environment by ``conftest.stream_server``."""
import os

from config.settings.test import *  # noqa: F401,F403
from config.settings.test import CACHES, DATABASES

REDIS_KEY_PREFIX = os.environ["STREAM_TEST_PREFIX"]
CACHES["default"]["KEY_PREFIX"] = os.environ["STREAM_TEST_CACHE_PREFIX"]
DATABASES["default"]["NAME"] = os.environ["STREAM_TEST_DATABASE"]
