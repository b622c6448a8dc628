"""Liveness and readiness probes for load balancers, and the JSON answers for unknown URLs and crashes."""
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from django_redis import get_redis_connection

from .exceptions import error_json


@csrf_exempt
@require_safe
def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_postgres() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_redis() -> None:
    get_redis_connection("default").ping()


def _check_broker() -> None:
    url = urlsplit(settings.CELERY_BROKER_URL)
    default_port = 5672 if url.scheme.startswith("amqp") else 6379
    with socket.create_connection((url.hostname or "127.0.0.1", url.port or default_port), timeout=2):
        pass


@csrf_exempt
@require_safe
def readyz(request, checks=None):
    """200 when every dependency answers; 503 naming each that does not.

    ``checks`` adds ``{name: callable}`` probes of dependencies this app cannot
    know (the URL conf passes object storage's).
    """
    failing = []
    probes = {"postgres": _check_postgres, "redis": _check_redis, "broker": _check_broker, **(checks or {})}
    for name, check in probes.items():
        try:
            check()
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            failing.append(name)
    if failing:
        return error_json(f"Not reachable: {', '.join(failing)}.", 503, status="unavailable", failing=failing)
    return JsonResponse({"status": "ok"})


def not_found(request, exception=None):
    return error_json("Not found.", 404)


def server_error(request):
    return error_json("Server error.", 500)
