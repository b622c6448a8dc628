"""Production settings: differ from base only through environment variables.

Every transport-security setting defaults to the secure choice, so that
``manage.py check --deploy`` is clean and a forgotten variable never weakens a
deployment. A stack served over plain HTTP on loopback (``make run``, the
benchmark: ``stack.procfile.process_env``) or by docker-compose on localhost
turns the HTTPS-only ones off explicitly.

HTTPS redirect and load balancers: ``SECURE_SSL_REDIRECT`` sends every plain
HTTP request to https://, except the probes and the metrics
(``SECURE_REDIRECT_EXEMPT``), which load balancers and Prometheus reach over
plain HTTP inside the network. Behind a proxy that terminates TLS, set
``TRUST_X_FORWARDED_PROTO=1`` so that Django sees the proxy's HTTPS requests as
secure (and does not redirect them forever) -- only there: anywhere else a
client could claim HTTPS with the header.
"""
from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F401,F403
from .base import DEV_SECRET_KEY, env

DEBUG = False

# No fallback: a known key would let anyone forge tokens. `make run` creates a
# random one per checkout (.data/secret_key) when none is set.
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. These are the production settings, which manage.py, the Celery app and "
        "the web server use unless told otherwise: set SECRET_KEY to a long random string (python -c "
        "'import secrets; print(secrets.token_urlsafe(50))'), or on a developer's machine opt in to the "
        "development settings with DJANGO_SETTINGS_MODULE=config.settings.local.")
SECRET_KEY_MIN_LENGTH = 50  # and 5 distinct characters: Django's own deploy check (security.W009)
if SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is the development key from config/settings/base.py and .env.example, which "
        "anyone can read; set SECRET_KEY to a long random string (python -c 'import secrets; "
        "print(secrets.token_urlsafe(50))').")
if len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-"):
    raise ImproperlyConfigured(
        f"SECRET_KEY is too weak: it must be at least {SECRET_KEY_MIN_LENGTH} characters of at least 5 "
        "different ones; set SECRET_KEY to a long random string (python -c 'import secrets; "
        "print(secrets.token_urlsafe(50))').")

SECURE_CONTENT_TYPE_NOSNIFF = True
# Cookies (the admin's session and CSRF token) only over HTTPS.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Patterns of paths (without the leading slash) served over plain HTTP too.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HSTS: sent on HTTPS responses only (browsers ignore it for IP addresses).
# Preloading takes effect only once the domain is submitted to the browsers'
# list, and is hard to undo then: set SECURE_HSTS_PRELOAD=0 to keep it out.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
