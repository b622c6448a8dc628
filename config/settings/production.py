"""Production settings: differ from base only through environment variables."""
from .base import *  # noqa: F401,F403
from .base import env

DEBUG = False
# No fallback: a known key would let anyone forge tokens. `make run` creates a
# random one per checkout (.data/secret_key) when none is set.
SECRET_KEY = env("SECRET_KEY")
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
