"""Liveness and readiness probes for load balancers, and the JSON answers for unknown URLs and crashes.

Every readiness check is bounded by its own timeout (``CHECK_TIMEOUT_SECONDS``
for connecting and for the answer), so a dependency that is down, or a host
that drops packets, makes ``/readyz`` answer 503 in seconds rather than hang.

Each process answers ``/readyz`` from the checks it last made, for
``READYZ_CACHE_SECONDS`` (1 s): the PostgreSQL check opens a connection of its
own, and a flood of probes would otherwise open one per request and compete for
the server's connections with real requests. One check runs at a time in a
process; requests that arrive meanwhile wait for its answer instead of making
their own.
"""
import socket
import threading
import time

import psycopg
import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from . import proxies
from .brokers import broker_address
from .exceptions import error_json


@csrf_exempt
@require_safe
def healthz(request):
    return JsonResponse({"status": "ok"})


CHECK_TIMEOUT_SECONDS = 2


def _check_postgres() -> None:
    # A connection of its own, as the site's are configured, with timeouts the
    # pooled one lacks: libpq waits on a dead host for minutes by default.
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    timeout_ms = CHECK_TIMEOUT_SECONDS * 1000
    params |= {"connect_timeout": CHECK_TIMEOUT_SECONDS, "tcp_user_timeout": timeout_ms,
               "options": f"{params.get('options', '')} -c statement_timeout={timeout_ms}".strip()}
    with psycopg.connect(**params) as conn:
        conn.execute("SELECT 1")


_redis_probes: dict[str, redis.Redis] = {}


def _check_redis() -> None:
    # A client of its own, with the probe's timeouts (the cache pool waits 5 s for
    # an answer) and no retries (which some redis-py versions make by default).
    url = settings.REDIS_URL
    if settings.REDIS_CLUSTER:
        _check_redis_cluster(url)
        return
    if url not in _redis_probes:
        _redis_probes[url] = redis.Redis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
                                                  socket_timeout=CHECK_TIMEOUT_SECONDS, retry=Retry(NoBackoff(), 0))
    _redis_probes[url].ping()


def _check_redis_cluster(url: str) -> None:
    """Every master answers, and the cluster covers every slot: the node ``REDIS_URL``
    names answering says nothing of the masters holding other slots. A client made for
    each check, so that it knows the masters as they are now (after a failover)."""
    probe = RedisCluster.from_url(url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
                                  socket_timeout=CHECK_TIMEOUT_SECONDS, retry=Retry(NoBackoff(), 0))
    try:
        probe.ping(target_nodes=RedisCluster.PRIMARIES)
        if probe.cluster_info(target_nodes=RedisCluster.RANDOM).get("cluster_state") != "ok":
            raise redis.exceptions.ClusterDownError("cluster_state is not ok")
    finally:
        probe.close()


def _check_broker() -> None:
    with socket.create_connection(broker_address(settings.CELERY_BROKER_URL), timeout=CHECK_TIMEOUT_SECONDS):
        pass


_answers_lock = threading.Lock()
# The probes' names -> (time.monotonic() when checked, the names of those failing).
_answers: dict[tuple[str, ...], tuple[float, list[str]]] = {}


def _failing(probes: dict) -> list[str]:
    key = tuple(probes)
    with _answers_lock:  # one check at a time: the others wait for, and take, its answer
        cached = _answers.get(key)
        if cached is not None and time.monotonic() - cached[0] < settings.READYZ_CACHE_SECONDS:
            return cached[1]
        failing = []
        for name, check in probes.items():
            try:
                check()
            except Exception:  # noqa: BLE001 - any failure means "not ready"
                failing.append(name)
        _answers[key] = (time.monotonic(), failing)
        return failing


@csrf_exempt
@require_safe
def readyz(request, checks=None):
    """200 when every dependency answers; 503 naming each that does not (as checked
    at most ``READYZ_CACHE_SECONDS`` ago by this process).

    ``checks`` adds ``{name: callable}`` probes of dependencies this app cannot
    know (the URL conf passes object storage's).
    """
    failing = _failing({"postgres": _check_postgres, "redis": _check_redis, "broker": _check_broker,
                        **(checks or {})})
    if failing:
        return error_json(f"Not reachable: {', '.join(failing)}.", 503, status="unavailable", failing=failing)
    warning = proxies.one_address_warning()
    return JsonResponse({"status": "ok", **({"warnings": [warning]} if warning else {})})


def not_found(request, exception=None):
    return error_json("Not found.", 404)


def server_error(request):
    return error_json("Server error.", 500)
