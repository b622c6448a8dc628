"""What a Celery broker URL names: RabbitMQ (an AMQP URL) or Redis, and where it
listens. The settings (quorum queues, the cluster's broker check), the readiness
probe and the stack runner all decide by this one rule.

Standard library only: the stack runner uses it before Django is configured,
which is why the import contract lets it import this module and no other app.
"""
from urllib.parse import urlsplit

# kombu's transports that speak AMQP 0-9-1 to RabbitMQ, and those of Redis (and
# the URL schemes redis-py takes for a Unix socket).
AMQP_SCHEMES = ("amqp", "amqps", "pyamqp", "librabbitmq")
REDIS_SCHEMES = ("redis", "rediss", "unix", "socket")


def first_url(url: str) -> str:
    """The first broker of a kombu failover list ("amqp://a;amqp://b")."""
    return url.split(";", 1)[0].strip()


def is_amqp(url: str) -> bool:
    """True when ``url`` (or the first of a failover list) names a RabbitMQ broker."""
    return urlsplit(first_url(url)).scheme in AMQP_SCHEMES


def is_redis(url: str) -> bool:
    """True when ``url`` (or the first of a failover list) names a Redis broker."""
    return urlsplit(first_url(url)).scheme in REDIS_SCHEMES


def broker_address(url: str) -> tuple[str, int]:
    """The host and port of the (first) broker, with the scheme's default port."""
    parts = urlsplit(first_url(url))
    if parts.scheme in AMQP_SCHEMES:
        default_port = 5671 if parts.scheme == "amqps" else 5672
    else:
        default_port = 6379
    return parts.hostname or "127.0.0.1", parts.port or default_port
