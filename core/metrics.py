"""Prometheus metrics: the registry plumbing, the request middleware and log line,
the broker's queue depth, and ``GET /metrics``.

Each app defines its own series in its own ``metrics`` module with
``prometheus_client``'s classes; this module defines the ones that belong to no
app (requests, the broker's queue, rate-limit refusals) and serves them all.

Under the stack (several gunicorn workers, Celery's prefork children) every
process writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR``, which the
runner gives web and worker alike and empties when the stack starts; a scrape
of any web worker then merges every process's files, the Celery worker's
fan-out series included. ``prometheus_client`` picks the mode when it is first
imported, from that variable; unset (tests, ``manage.py runserver``), each
process keeps its own samples in the default registry.
"""
import logging
import os
import time

import redis
from django.conf import settings
from django.http import HttpResponse
from django.urls import Resolver404, resolve
from django.utils.functional import SimpleLazyObject, empty
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from kombu import Connection
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector

from .brokers import is_redis

request_logger = logging.getLogger("timeline.request")

# --- Series that belong to no app --------------------------------------------------

REQUEST_DURATION = Histogram(
    "timeline_http_request_duration_seconds",
    "Time from the request reaching Django to its response, by URL route (the pattern, never the raw path), "
    "method and status code.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0),
)

RATE_LIMIT_REFUSALS = Counter(
    "timeline_rate_limit_refusals_total",
    "Requests refused with 429 by a rate limit, by throttle scope.",
    ["scope"],
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"  # no URL pattern: 404s and requests refused before routing


def rate_limit_refused(*, scope: str) -> None:
    """Count one request refused by the rate limit ``scope`` (``core.exceptions``
    calls it for every DRF ``Throttled``; a limiter outside DRF calls it itself)."""
    RATE_LIMIT_REFUSALS.labels(scope=scope).inc()


# --- Requests --------------------------------------------------------------------------


def _route(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        # Answered before the URL was resolved (a request guard): resolve it now,
        # which is rare; an unknown path is one label, whatever the path.
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return UNMATCHED_ROUTE
    return match.route or match.view_name or UNMATCHED_ROUTE


def _user_id(request) -> int | None:
    """The id of the user the view authenticated, without authenticating anyone here.

    DRF's ``Request.user`` setter also sets it on the Django request, so after the
    view this is the JWT's user. A session user Django has not looked up (a lazy
    object never evaluated) stays unknown rather than costing a query.
    """
    user = getattr(request, "user", None)
    # _wrapped: the lazy object's slot, which django-stubs does not declare.
    if isinstance(user, SimpleLazyObject) and user._wrapped is empty:  # type: ignore[attr-defined]
        return None
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return getattr(user, "id", None)


class RequestMetricsMiddleware:
    """Time every request into ``timeline_http_request_duration_seconds`` and log one line for it.

    The first middleware, so the time includes the others and the request guards'
    refusals are counted too. ``/metrics`` is measured like any route (a scrape
    slowed by an unreachable broker shows up as ``route="metrics"``).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        start = time.perf_counter()
        response = self.get_response(request)
        duration = time.perf_counter() - start
        route = _route(request)
        method = request.method if request.method in _METHODS else "other"
        REQUEST_DURATION.labels(route=route, method=method, status=str(response.status_code)).observe(duration)
        user_id = _user_id(request)
        request_logger.info(
            "%s %s %s %.1fms user=%s", request.method, request.path, response.status_code, duration * 1000,
            user_id if user_id is not None else "-",
            extra={"method": request.method, "path": request.path, "route": route,
                   "status": response.status_code, "duration_ms": round(duration * 1000, 1), "user_id": user_id},
        )
        return response


# --- The broker's queue, read at scrape time ----------------------------------------------

# kombu's Redis transport keeps a queue's messages of priority p > 0 under "<queue>\x06\x16<p>".
_REDIS_PRIORITY_SEPARATOR = "\x06\x16"
_REDIS_PRIORITY_STEPS = (0, 3, 6, 9)
_BROKER_TIMEOUT_SECONDS = 1.0


class BrokerQueueCollector:
    """The Celery queue's length, asked of the broker at each scrape.

    Redis broker: ``LLEN`` of the queue's list (and its priority lists) under
    ``global_keyprefix``, one pipelined round trip. AMQP broker: a passive
    ``queue_declare``'s message count. An unreachable broker exports
    ``timeline_celery_broker_up 0`` and no queue length, and never fails the scrape.
    """

    def __init__(self):
        self._clients: dict[str, redis.Redis] = {}

    def collect(self):
        up = GaugeMetricFamily("timeline_celery_broker_up",
                               "1 if the Celery broker answered this scrape's queue-length query, else 0.")
        length = GaugeMetricFamily("timeline_celery_queue_length",
                                   "Messages waiting in the Celery queue (not yet taken by a worker).",
                                   labels=["queue"])
        queue = settings.CELERY_TASK_DEFAULT_QUEUE
        try:
            length.add_metric([queue], self._length(settings.CELERY_BROKER_URL.split(";")[0], queue))
        except Exception:  # noqa: BLE001 - whatever the broker does, the scrape goes on
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield length

    def _length(self, url: str, queue: str) -> int:
        if is_redis(url):
            return self._redis_length(url, queue)
        with Connection(url, connect_timeout=_BROKER_TIMEOUT_SECONDS,
                        transport_options={"max_retries": 0}) as conn:
            try:
                # An AMQP channel; celery-types declares only what every transport's channel has.
                _, messages, _ = conn.default_channel.queue_declare(  # type: ignore[attr-defined]
                    queue=queue, passive=True)
            except conn.channel_errors:
                return 0  # reachable, but no worker has declared the queue yet
            return messages

    def _redis_length(self, url: str, queue: str) -> int:
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = redis.Redis.from_url(
                url, socket_connect_timeout=_BROKER_TIMEOUT_SECONDS, socket_timeout=_BROKER_TIMEOUT_SECONDS)
        prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
        pipe = client.pipeline(transaction=False)
        for priority in _REDIS_PRIORITY_STEPS:
            pipe.llen(f"{prefix}{queue}{_REDIS_PRIORITY_SEPARATOR}{priority}" if priority else f"{prefix}{queue}")
        return sum(pipe.execute())


_broker_queue = BrokerQueueCollector()


def _multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def scrape() -> bytes:
    """Every series, in Prometheus' text format: all processes' files in multiprocess
    mode, this process's default registry otherwise, and the broker's queue."""
    registry = CollectorRegistry()  # no auto-describe: the broker is asked once, when scraped
    if _multiprocess():
        MultiProcessCollector(registry)
    else:
        registry.register(_Delegate(REGISTRY))
    registry.register(_broker_queue)
    return generate_latest(registry)


class _Delegate:
    """Another registry's series, as one collector of this scrape's registry."""

    def __init__(self, registry):
        self._registry = registry

    def collect(self):
        return self._registry.collect()


@csrf_exempt
@require_safe
def metrics_view(request):
    """``GET /metrics`` for the Prometheus scraper: no authentication (keep it off the public edge)."""
    return HttpResponse(scrape(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
