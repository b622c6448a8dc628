"""Settings shared by every environment.

Everything that differs between a laptop and production is read here from the
environment through one ``env`` object; ``local``, ``test`` and ``production``
only change what they must.
"""
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from core.brokers import is_amqp
from core.rates import parse_rate
from mastoapi.scopes import ALL as MASTODON_SCOPES

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

# The development key: known to everyone, so production settings refuse it.
DEV_SECRET_KEY = "dev-only-insecure-secret-key-change-me-in-production"
SECRET_KEY = env("SECRET_KEY", default=DEV_SECRET_KEY)
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    # Refresh tokens are recorded (OutstandingToken) and revoked (BlacklistedToken).
    "rest_framework_simplejwt.token_blacklist",
    "django.contrib.postgres",
    "drf_spectacular",
    "corsheaders",
    "social",
    "tweets",
    "timelines",
    "media",
    "oauth2_provider",
    "mastoapi",
    "streaming",
    "web",
]

MIDDLEWARE = [
    "core.metrics.RequestMetricsMiddleware",  # first: times and logs every request, refusals included
    # Before every guard that may answer early (413, 400) and before the views' 401 and 429,
    # so a browser script on another origin can read those refusals too; answers preflights.
    "corsheaders.middleware.CorsMiddleware",
    "mastoapi.middleware.MastodonErrorBodyMiddleware",  # the guards' errors in Mastodon's shape on its paths
    "core.middleware.BodySizeLimitMiddleware",
    "core.middleware.UnstorableTextGuardMiddleware",  # no NUL in any query string or form
    "core.proxies.ClientAddressWatchMiddleware",  # /readyz warns when every client has one address
    "core.throttling.RateLimitHeadersMiddleware",  # X-RateLimit-* on every limited response
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Data stores -----------------------------------------------------------

# Every wait on PostgreSQL is bounded, so a server that stops answering (frozen,
# or a network that drops packets) costs a request seconds, then a 503, never a
# hang (core/postgres, docs/reliability.md). Connecting (libpq's connect_timeout,
# whole seconds):
DATABASE_CONNECT_TIMEOUT = env.int("DATABASE_CONNECT_TIMEOUT", default=2)
# The server ends a statement that runs longer (0: never), keeping the connection...
DATABASE_STATEMENT_TIMEOUT = env.float("DATABASE_STATEMENT_TIMEOUT", default=3.0)
# ...and the client stops waiting for any answer after this (0: never), closing the
# connection: the bound that holds when the server does not run at all.
DATABASE_QUERY_TIMEOUT = env.float("DATABASE_QUERY_TIMEOUT", default=4.0)
# After this many connections or waits in a row failed, a process refuses every
# database call at once for the cooldown (then tries one): core/postgres.
DATABASE_BREAKER_FAILURES = env.int("DATABASE_BREAKER_FAILURES", default=3)
DATABASE_BREAKER_COOLDOWN_SECONDS = env.float("DATABASE_BREAKER_COOLDOWN_SECONDS", default=3.0)


def _bounded(database: dict) -> dict:
    """A database of ``env.db`` on the bounded backend, with the timeouts above."""
    database["ENGINE"] = "core.postgres"
    options = database.setdefault("OPTIONS", {})
    options.setdefault("connect_timeout", DATABASE_CONNECT_TIMEOUT)
    if DATABASE_STATEMENT_TIMEOUT:
        timeout = f"-c statement_timeout={round(DATABASE_STATEMENT_TIMEOUT * 1000)}"
        options["options"] = f"{options.get('options', '')} {timeout}".strip()
    return database


DATABASES = {
    "default": _bounded(env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/timeline")),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# A streaming replica of the primary for lag-tolerant reads (rebuilds, deep
# pages, fan-out's follower scans: core/db.py, docs/scaling.md). Unset: one server.
if env("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = _bounded(env.db("DATABASE_REPLICA_URL"))
    DATABASES["replica"]["CONN_MAX_AGE"] = DATABASES["default"]["CONN_MAX_AGE"]
    DATABASES["replica"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
# Reads routed to the replica go to the primary while its replay lags more than this.
DATABASE_REPLICA_MAX_LAG_SECONDS = env.float("DATABASE_REPLICA_MAX_LAG_SECONDS", default=5.0)
DATABASE_ROUTERS = ["core.db.PrimaryRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Every key the service writes starts with this, so several deployments (or
# test runs) can share one Redis without seeing each other.
REDIS_KEY_PREFIX = env("REDIS_KEY_PREFIX", default="")
# After this many consecutive failed Redis calls, a process skips Redis for the
# cooldown (then tries one call): core/breaker.py.
REDIS_BREAKER_FAILURES = env.int("REDIS_BREAKER_FAILURES", default=3)
REDIS_BREAKER_COOLDOWN_SECONDS = env.float("REDIS_BREAKER_COOLDOWN_SECONDS", default=3.0)

# 1: REDIS_URL names one node of a Redis Cluster; the client (core/redis.py)
# discovers the others and follows failovers. Every multi-key script keeps its
# keys in one hash slot; see docs/scaling.md, "Redis Cluster".
REDIS_CLUSTER = env.bool("REDIS_CLUSTER", default=False)
# On a cluster, beat compares the slot map with the last one seen this often; the
# slots whose master changed (a failover) have their timelines rebuilt from
# PostgreSQL (timelines.services.failover_repair, docs/scaling.md "Failover").
REDIS_FAILOVER_CHECK_SECONDS = env.int("REDIS_FAILOVER_CHECK_SECONDS", default=2)
# redis.cluster.RedisCluster's options (cluster mode only).
REDIS_CLUSTER_OPTIONS = {
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    "max_connections": 50,
    "health_check_interval": 30,
}

# Every module reaches Redis through core.redis.connection(): on one server that
# is django-redis's pooled client of this cache (Django's cache API itself is not
# used); on a cluster a RedisCluster client, and Django's cache stays local.
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX + "cache",
        "OPTIONS": {
            "PARSER_CLASS": "redis.connection._HiredisParser",
            # Every call fails fast when Redis is frozen or gone: a bounded wait
            # (a fan-out batch's script takes milliseconds), then the breaker
            # (core/breaker.py) skips Redis for a moment instead of waiting again.
            "REDIS_CLIENT_CLASS": "core.breaker.BreakerRedis",
            "SOCKET_CONNECT_TIMEOUT": env.float("REDIS_CONNECT_TIMEOUT", default=0.5),
            "SOCKET_TIMEOUT": env.float("REDIS_SOCKET_TIMEOUT", default=1.0),
            "CONNECTION_POOL_KWARGS": {"max_connections": 50, "health_check_interval": 30},
        },
    }
}
if REDIS_CLUSTER:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_USER_MODEL = "social.User"
# Django's hashers, in Django's order (passwords are hashed with the first), and last
# the OAuth client secrets' (never a password's: mastoapi/hashers.py).
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "mastoapi.hashers.ClientSecretHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env("STATIC_ROOT", default=None)  # only needed for collectstatic
# The admin's CSS and JS, served by WhiteNoise straight from the apps, so the
# moderation pages work under gunicorn without a collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = False

# --- The timeline ------------------------------------------------------------

TIMELINE_MAX_ENTRIES = env.int("TIMELINE_MAX_ENTRIES", default=800)
# Trimming only once a list is this much over the cap halves the trim work.
TIMELINE_TRIM_SLACK = env.int("TIMELINE_TRIM_SLACK", default=50)
TIMELINE_CELEBRITY_THRESHOLD = env.int("TIMELINE_CELEBRITY_THRESHOLD", default=100_000)
TIMELINE_INACTIVE_DAYS = env.int("TIMELINE_INACTIVE_DAYS", default=14)
# A fan-out batch is one task's share of the followers: read in one query and
# written in one pipelined round trip. A pushed author has fewer followers than
# the celebrity threshold, so by default one task delivers a whole tweet; larger
# thresholds split it, the batches going to other workers.
FANOUT_BATCH_SIZE = env.int("FANOUT_BATCH_SIZE", default=100_000)
# Keys per call of the insert script: each call holds Redis about a microsecond a key,
# so reads interleave with a long fan-out instead of waiting for all of it.
FANOUT_SCRIPT_KEYS = env.int("FANOUT_SCRIPT_KEYS", default=1000)
# A fan-out to at least this many followers first drops those whose timeline is
# not cached (timelines/store/live.py, the live-user set): one bitmap read instead of a
# lookup for each follower who is not reading.
FANOUT_LIVE_FILTER_MIN = env.int("FANOUT_LIVE_FILTER_MIN", default=1000)
# A batch's followers are read this many at a time when there are more: each part
# is written to Redis (by a thread of the worker's own) while the next is read
# from PostgreSQL. 0 reads them in one query, then writes.
FANOUT_READ_CHUNK = env.int("FANOUT_READ_CHUNK", default=10_000)
# The reconciler (beat, every FANOUT_RECONCILE_EVERY_SECONDS) restarts fan-outs
# still unfinished this long after their tweet was posted.
FANOUT_RECONCILE_AFTER_SECONDS = env.int("FANOUT_RECONCILE_AFTER_SECONDS", default=30)
FANOUT_RECONCILE_EVERY_SECONDS = env.int("FANOUT_RECONCILE_EVERY_SECONDS", default=10)
# A user follows (or asks to follow) at most this many accounts, which bounds a
# cold read and a rebuild.
MAX_FOLLOWING = env.int("MAX_FOLLOWING", default=5000)
# How often changes to privacy and suspension, and (separately) follow changes
# whose timeline update was lost, are replayed onto the caches (beat); a replayed
# follow change must be FOLLOW_UPDATE_REPLAY_AFTER_SECONDS old, so the
# after-commit update has had its chance.
ACCOUNT_CHANGE_REPLAY_SECONDS = env.int("ACCOUNT_CHANGE_REPLAY_SECONDS", default=2)
FOLLOW_UPDATE_REPLAY_EVERY_SECONDS = env.int("FOLLOW_UPDATE_REPLAY_EVERY_SECONDS", default=2)
FOLLOW_UPDATE_REPLAY_AFTER_SECONDS = env.int("FOLLOW_UPDATE_REPLAY_AFTER_SECONDS", default=3)
TWEET_CACHE_TTL_SECONDS = env.int("TWEET_CACHE_TTL_SECONDS", default=3 * 24 * 3600)
# Snowflake worker-id leases: renewed at least this often while minting.
SNOWFLAKE_LEASE_SECONDS = env.int("SNOWFLAKE_LEASE_SECONDS", default=60)
if SNOWFLAKE_LEASE_SECONDS < 15:  # must outlast several 5 s renewals, or two holders could overlap
    raise ImproperlyConfigured("SNOWFLAKE_LEASE_SECONDS must be at least 15.")
if FANOUT_BATCH_SIZE < 1 or FANOUT_SCRIPT_KEYS < 1 or FANOUT_READ_CHUNK < 0:
    raise ImproperlyConfigured("FANOUT_BATCH_SIZE and FANOUT_SCRIPT_KEYS must be at least 1, "
                               "FANOUT_READ_CHUNK at least 0.")

MAX_REQUEST_BODY_BYTES = 64 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES
# The largest upload of each kind of media (media.services.ALLOWED_TYPES).
MEDIA_IMAGE_MAX_BYTES = 5 * 1024 * 1024
MEDIA_VIDEO_MAX_BYTES = 512 * 1024 * 1024
# The one path whose body carries a file (Mastodon clients upload media through
# the API): the largest media (a video) plus the multipart envelope.
# Django spools such a file to disk past FILE_UPLOAD_MAX_MEMORY_SIZE.
UPLOAD_PATHS = ["/api/v2/media", "/api/v1/media"]
MAX_UPLOAD_BODY_BYTES = max(MEDIA_IMAGE_MAX_BYTES, MEDIA_VIDEO_MAX_BYTES) + MAX_REQUEST_BODY_BYTES

# --- Media (S3-compatible storage) -------------------------------------------

# Clients upload straight to the bucket with a presigned POST; the API never
# carries the bytes. Only the endpoint and the credentials differ between the
# local endpoint (moto, started by `make run`), MinIO, R2 and AWS S3 (endpoint
# empty). django-storages reads these AWS_* names (media/storage.py).
AWS_S3_ENDPOINT_URL = env("AWS_S3_ENDPOINT_URL", default="http://127.0.0.1:9000") or None
AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME", default="timeline-media")
AWS_ACCESS_KEY_ID = env("AWS_ACCESS_KEY_ID", default="timeline-local")
AWS_SECRET_ACCESS_KEY = env("AWS_SECRET_ACCESS_KEY", default="timeline-local-secret")
AWS_S3_REGION_NAME = env("AWS_S3_REGION_NAME", default="us-east-1")
AWS_S3_ADDRESSING_STYLE = env("AWS_S3_ADDRESSING_STYLE", default="path")
AWS_S3_SIGNATURE_VERSION = "s3v4"
# The endpoint as clients reach it, where that differs from the service's own
# address for it (containers: http://s3:9000 inside, http://localhost:9000
# outside). A POST policy's signature does not cover the host.
AWS_S3_PUBLIC_ENDPOINT_URL = env("AWS_S3_PUBLIC_ENDPOINT_URL", default="")
AWS_S3_FILE_OVERWRITE = False
# Where readers fetch media: a CDN in front of the bucket. Empty: the storage
# endpoint's own public URL for the bucket.
MEDIA_CDN_URL = env("MEDIA_CDN_URL", default="")
# How long a presigned upload stays usable, and how long an upload may wait
# for a tweet before the sweeper (beat) deletes the object and its record.
MEDIA_UPLOAD_EXPIRES_SECONDS = env.int("MEDIA_UPLOAD_EXPIRES_SECONDS", default=3600)
MEDIA_UNATTACHED_MAX_AGE_SECONDS = env.int("MEDIA_UNATTACHED_MAX_AGE_SECONDS", default=24 * 3600)
MEDIA_SWEEP_EVERY_SECONDS = env.int("MEDIA_SWEEP_EVERY_SECONDS", default=3600)
# The most bytes of media one user may hold (uploads and attached alike): an upload
# that would pass it is refused with 413, before any byte is stored.
MEDIA_QUOTA_BYTES = env.int("MEDIA_QUOTA_BYTES", default=2 * 1024 * 1024 * 1024)
# How long a signed URL of a private account's media (or of an upload not yet on a
# tweet) works; it is signed afresh each time the tweet is shown.
MEDIA_PRIVATE_URL_SECONDS = env.int("MEDIA_PRIVATE_URL_SECONDS", default=900)
# How often media are put where their tweet and owner say (a deleted tweet's deleted,
# a private or suspended owner's out of public reach), for whatever the after-commit
# tasks missed; and how often storage deletions left pending are retried. Each run
# scans the attached media (joined with their owners and live tweets).
MEDIA_RECONCILE_EVERY_SECONDS = env.int("MEDIA_RECONCILE_EVERY_SECONDS", default=300)
# A repeated Idempotency-Key answers the first tweet for this long; beat deletes
# expired keys this often.
IDEMPOTENCY_KEY_TTL_SECONDS = env.int("IDEMPOTENCY_KEY_TTL_SECONDS", default=24 * 3600)
IDEMPOTENCY_KEY_SWEEP_EVERY_SECONDS = env.int("IDEMPOTENCY_KEY_SWEEP_EVERY_SECONDS", default=3600)

# --- API ---------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["social.authentication.SafeJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["core.renderers.FastJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.SafeJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.exceptions.exception_handler",
    # Limits by the view's throttle_scope, counted in Redis (core/throttling.py).
    "DEFAULT_THROTTLE_CLASSES": ["core.throttling.RedisScopeThrottle"],
    "UNAUTHENTICATED_USER": None,
}

# Rate limits, "N/period" with an optional multiple of the unit (900/15min),
# counted in Redis by core/throttling.py: posts, follow changes (follow,
# unfollow, approve, reject) and timeline reads per user; login attempts per
# username and, separately, per client IP; registrations per client IP.
RATE_LIMIT_TWEETS = env("RATE_LIMIT_TWEETS", default="30/min")
RATE_LIMIT_FOLLOWS = env("RATE_LIMIT_FOLLOWS", default="100/min")
RATE_LIMIT_TIMELINE = env("RATE_LIMIT_TIMELINE", default="900/15min")
RATE_LIMIT_LOGIN = env("RATE_LIMIT_LOGIN", default="10/min")
RATE_LIMIT_REGISTER = env("RATE_LIMIT_REGISTER", default="20/hour")
# Media uploads per user (a presigned POST or a Mastodon upload through the API).
RATE_LIMIT_MEDIA = env("RATE_LIMIT_MEDIA", default="30/hour")
# Profile changes per user (PATCH /v1/users/me, update_credentials): going private
# or public moves every one of the user's media objects in storage.
RATE_LIMIT_PROFILE = env("RATE_LIMIT_PROFILE", default="30/hour")
for _name in ("RATE_LIMIT_TWEETS", "RATE_LIMIT_FOLLOWS", "RATE_LIMIT_TIMELINE", "RATE_LIMIT_LOGIN",
              "RATE_LIMIT_REGISTER", "RATE_LIMIT_MEDIA", "RATE_LIMIT_PROFILE"):
    try:
        parse_rate(globals()[_name])
    except ValueError as _exc:
        raise ImproperlyConfigured(f"{_name}: {_exc}") from None
# OAuth requests that authenticate a client (/oauth/token, /oauth/revoke), per
# client IP, counted before the client secret is checked; app registrations
# (POST /api/v1/apps) per client IP, apart from sign-ups.
RATE_LIMIT_OAUTH_CLIENT = env("RATE_LIMIT_OAUTH_CLIENT", default="30/min")
RATE_LIMIT_APP_REGISTER = env("RATE_LIMIT_APP_REGISTER", default="20/hour")
# Per client id (an app's users share it): larger than any one address's budget.
RATE_LIMIT_OAUTH_APP = env("RATE_LIMIT_OAUTH_APP", default="600/min")
for _name in ("RATE_LIMIT_OAUTH_CLIENT", "RATE_LIMIT_APP_REGISTER", "RATE_LIMIT_OAUTH_APP"):
    try:
        parse_rate(globals()[_name])
    except ValueError as _exc:
        raise ImproperlyConfigured(f"{_name}: {_exc}") from None
# How long (seconds) each process answers /readyz from its last checks, so a flood
# of probes opens no more than one PostgreSQL connection per process per period.
READYZ_CACHE_SECONDS = env.float("READYZ_CACHE_SECONDS", default=1.0)

# Live timelines (streaming/, docs/streaming.md): the Procfile's stream process.
# Where clients reach it, as the instance documents announce it (ws:// or wss://,
# no path). Empty: the host the client asked for, on STREAM_PORT (as make run serves it).
STREAMING_API_URL = env.str("STREAMING_API_URL", default="")
# The port the stream process listens on (the Procfile's stream line reads it too).
STREAM_PORT = env.int("STREAM_PORT", default=8001)
# The API's own base URL, which the streamed Mastodon entities link to (their
# uri, url, account links). Empty: the host the client asked for; a stream asked
# for on STREAM_PORT links to the same host on PORT, where the web process answers.
SITE_URL = env.str("SITE_URL", default="")
WEB_PORT = env.int("PORT", default=8000)
# Seconds between two heartbeats of an idle stream (SSE comment; WebSocket ping).
STREAM_HEARTBEAT_SECONDS = env.float("STREAM_HEARTBEAT_SECONDS", default=15.0)
# Seconds between two rounds of re-checking open streams' tokens and users: each
# round checks the next 1,000 streams (a suspension, ended sessions or a revoked
# token is announced and checked at once instead).
STREAM_RECHECK_SECONDS = env.float("STREAM_RECHECK_SECONDS", default=5.0)
# Events one connection may have waiting to be written before it counts as too
# slow and is disconnected (it never holds up the others).
STREAM_BUFFER_EVENTS = env.int("STREAM_BUFFER_EVENTS", default=256)
# How many tweets a /v1 stream replays after Last-Event-ID at most; further
# back, it sends a "reset" event (read the timeline again) and goes live.
STREAM_RESUME_MAX = env.int("STREAM_RESUME_MAX", default=1000)
# Pub/sub channels the events are spread over (sharded pub/sub: on a Redis
# Cluster, over its masters). Every stream process listens to all of them.
STREAM_CHANNELS = env.int("STREAM_CHANNELS", default=4)
# How many proxies of ours stand in front of the app, each appending to
# X-Forwarded-For: the client's IP for the per-IP limits is then the entry that
# many from the right. 0 (the default): the header is ignored, REMOTE_ADDR counts.
RATE_LIMIT_TRUSTED_PROXIES = env.int("RATE_LIMIT_TRUSTED_PROXIES", default=0)
if RATE_LIMIT_TRUSTED_PROXIES < 0:
    raise ImproperlyConfigured("RATE_LIMIT_TRUSTED_PROXIES must be 0 or more.")

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=7)),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "UPDATE_LAST_LOGIN": False,
    # A refresh answers a new refresh token and revokes the one it was given
    # (social/tokens.py), so a stolen refresh token works once at most.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Home Timeline API",
    "DESCRIPTION": "Tweets, the follow graph and a newest-first home timeline.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Request bodies get components of their own, so a required text field shows
    # minLength 1 (an empty one is a 400), which a response's shape must not say.
    "COMPONENT_SPLIT_REQUEST": True,
    # The errors every operation can answer (400/401/404/413/429/503), added once.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.error_responses_hook",
    ],
}

# --- Browsers on other origins (CORS, django-cors-headers) ---------------------

# As Mastodon serves it (its config/initializers/cors.rb): any origin may call the
# APIs, the token endpoints and the discovery documents, with a bearer token and never
# with credentials (cookies, HTTP authentication), so no page elsewhere can act with a
# signed-in session. The admin, the HTML sign-in pages (/oauth/authorize,
# /oauth/login) and every other page stay same-origin: no CORS headers there.
# docs/security.md, "CORS".
CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_CREDENTIALS = False
# /v1/docs is the schema's HTML page (Swagger UI): same-origin too.
CORS_URLS_REGEX = r"^/(?:api/|v1/(?!docs$)|oauth/(?:token|revoke)$|\.well-known/|nodeinfo/)"
# django-cors-headers' defaults but x-csrftoken (no cookie crosses origins, so no CSRF
# token either), and the key that makes a post safe to retry.
CORS_ALLOW_HEADERS = ("accept", "authorization", "content-type", "user-agent", "x-requested-with",
                      "idempotency-key")
CORS_EXPOSE_HEADERS = ("Link", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After",
                       "Idempotent-Replayed")

# --- The Mastodon-compatible API (mastoapi/, docs/subsystems/mastodon-api.md) -----------

# OAuth 2 by django-oauth-toolkit: Mastodon's tokens do not expire (a user
# revokes them), so an access token lives ten years and no refresh token is
# needed. PKCE is taken when a client sends it (S256) and not demanded, as
# Mastodon does; mastoapi's validator allows each app the three grants Mastodon
# offers and no scope its app did not register.
OAUTH2_PROVIDER = {
    "OAUTH2_VALIDATOR_CLASS": "mastoapi.oauth.MastodonValidator",
    "SCOPES_BACKEND_CLASS": "mastoapi.oauth.AppScopes",
    "SCOPES": {scope: scope for scope in MASTODON_SCOPES},
    "DEFAULT_SCOPES": ["read"],
    # Ten years: a token lives until it is revoked (/oauth/revoke, /v1/auth/sessions, a new
    # password, a suspension), as Mastodon's, whose clients never refresh
    # (docs/subsystems/mastodon-api.md#token-lifetime-and-revocation).
    "ACCESS_TOKEN_EXPIRE_SECONDS": 10 * 365 * 24 * 3600,
    # A refresh answers a new refresh token (the Token entity hands it on); one presented
    # again after that, with no grace period, revokes its whole family (below).
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "PKCE_REQUIRED": False,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["http", "https", "urn"],
    # RFC 9700 (the OAuth security BCP) wherever Mastodon's clients allow it:
    # tokens stored only as checksums, no implicit grant, PKCE by S256 only,
    # tokens never read from a query string, the `iss` response parameter, and
    # a replayed refresh token revokes its family.
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    # Client secrets are random (128 characters): salted SHA-256 keeps them safe at rest
    # and checks them in microseconds, not PBKDF2's half second (mastoapi/hashers.py).
    "CLIENT_SECRET_HASHER": "client_secret_sha256",
}
# Where Mastodon's API departs from RFC 9700 on purpose, and its clients rely on
# it: the password grant (Mastodon.py's log_in, the `toot` CLI), http redirect
# URIs (a desktop app's loopback callback) and PKCE taken when sent, not demanded.
SILENCED_SYSTEM_CHECKS = ["oauth2_provider.W002", "oauth2_provider.W008", "oauth2_provider.W010"]
# Named, though it is the default: a migration that points at it (mastoapi's)
# must find the swappable setting.
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
# The consent page of the authorization-code grant signs the user in first.
LOGIN_URL = "/oauth/login"
# What /api/v1/instance reports: the host name clients show, and the version
# Mastodon clients gate features on (they read the part before " (compatible", as
# Pleroma's; a "+" would read as Hometown's fork version to Mastodon.py). NodeInfo names
# the software itself (lower case, as its schema wants).
MASTODON_DOMAIN = env("MASTODON_DOMAIN", default="localhost")
SOFTWARE_NAME = "hometimeline"
SOFTWARE_VERSION = "1.0.0"
MASTODON_VERSION = f"4.3.0 (compatible; {SOFTWARE_NAME} {SOFTWARE_VERSION})"
# How often beat counts the accounts and posts the instance documents and NodeInfo show
# (mastoapi/usage.py): a scan of the last half year's tweets, so never in a request.
INSTANCE_USAGE_EVERY_SECONDS = env.int("INSTANCE_USAGE_EVERY_SECONDS", default=3600)

# --- Celery --------------------------------------------------------------------

CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
if REDIS_CLUSTER and not is_amqp(CELERY_BROKER_URL):
    # Celery's Redis transport speaks to one server, not to a cluster.
    raise ImproperlyConfigured(
        "REDIS_CLUSTER=1 needs a RabbitMQ broker: set CELERY_BROKER_URL to an amqp:// URL "
        "(Celery cannot use a Redis Cluster as its broker).")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# At-least-once delivery: a task is acknowledged only once it has run, and a
# worker killed mid-task gives its message back. Tasks are idempotent for this.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=4)
# Added to a worker process's niceness (0: none): where web and workers share cores,
# readers come first and fan-out uses what they leave (config/celery_app.py).
WORKER_NICE = env.int("WORKER_NICE", default=10)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes every database connection before and after each
# task unless this is set: a new PostgreSQL session per fan-out, a third of a
# worker's time under posting load (profiled). With it, a worker process keeps
# its connections, and closes them itself only every 2 x this many tasks;
# config/celery_app.py checks them around each task as Django does around a
# request (CONN_MAX_AGE, a connection that failed is dropped).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
# Must exceed the longest task (a fan-out batch takes milliseconds), or a Redis
# broker redelivers a running task. Messages of a worker killed outright come
# back after it; the reconciler restarts their fan-outs well before.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 600,
    "global_keyprefix": REDIS_KEY_PREFIX,
}
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", default="timeline")
# RabbitMQ (CELERY_BROKER_URL=amqp://...): a quorum queue, durable and replicated
# across the cluster's nodes. A dead worker's unacknowledged messages go back to
# the queue as soon as its channel closes (seconds, not the visibility timeout);
# a message delivered this many times without an ack (one that kills its worker
# every time) is dropped, and the reconciler restarts its fan-out instead.
CELERY_QUEUE_DELIVERY_LIMIT = env.int("CELERY_QUEUE_DELIVERY_LIMIT", default=10)


def celery_task_queues(name: str, broker_url: str) -> list | None:
    """The task queue as the broker should declare it: a quorum queue on RabbitMQ,
    kombu's default (a Redis list) otherwise. Its exchange is a topic exchange,
    because Celery's native delayed delivery (the retries' countdowns: a quorum
    queue has no global QoS for a worker to hold early messages with) needs one."""
    if not is_amqp(broker_url):
        return None
    from kombu import Exchange, Queue

    return [Queue(name, Exchange(name, type="topic"), routing_key=name, durable=True,
                  queue_arguments={"x-queue-type": "quorum", "x-delivery-limit": CELERY_QUEUE_DELIVERY_LIMIT})]


CELERY_TASK_QUEUES = celery_task_queues(CELERY_TASK_DEFAULT_QUEUE, CELERY_BROKER_URL)
if is_amqp(CELERY_BROKER_URL):
    CELERY_TASK_DEFAULT_EXCHANGE_TYPE = "topic"
    # Quorum queues reject a global QoS; Celery detects them and uses a
    # per-consumer prefetch instead (the default, restated: it is what makes
    # the worker start at all).
    CELERY_WORKER_DETECT_QUORUM_QUEUES = True
    # A publish returns once RabbitMQ has the message (replicated, for a quorum
    # queue); a refused or lost one raises, and the fan-out is left to the reconciler.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True}
def _every(task: str, seconds: int) -> dict:
    """A beat entry: ``task`` every ``seconds``. A run that waited longer than its
    period is superseded by the next one."""
    return {"task": task, "schedule": seconds, "options": {"expires": seconds}}


CELERY_BEAT_SCHEDULE = {
    "fanout-reconcile": _every("timelines.reconcile", FANOUT_RECONCILE_EVERY_SECONDS),
    "account-changes-replay": _every("social.replay_account_changes", ACCOUNT_CHANGE_REPLAY_SECONDS),
    "follow-updates-replay": _every("timelines.replay_follow_updates", FOLLOW_UPDATE_REPLAY_EVERY_SECONDS),
    "media-sweep": _every("media.sweep", MEDIA_SWEEP_EVERY_SECONDS),
    "media-reconcile": _every("tweets.media_reconcile", MEDIA_RECONCILE_EVERY_SECONDS),
    "idempotency-keys-sweep": _every("tweets.sweep_idempotency_keys", IDEMPOTENCY_KEY_SWEEP_EVERY_SECONDS),
    "instance-usage": _every("mastoapi.count_usage", INSTANCE_USAGE_EVERY_SECONDS),
}
if REDIS_CLUSTER:
    CELERY_BEAT_SCHEDULE["redis-failover-repair"] = _every("timelines.failover_repair", REDIS_FAILOVER_CHECK_SECONDS)
CELERY_BEAT_SCHEDULE_FILENAME = str(BASE_DIR / ".data" / "celerybeat-schedule")
CELERY_BEAT_SCHEDULER = "config.beat:BeatScheduler"  # creates the schedule's directory

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
