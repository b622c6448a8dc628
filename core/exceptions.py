"""Domain errors and the one DRF exception handler that turns them into responses.

Services raise ``ApplicationError`` (or a subclass carrying a status); views never
build error responses by hand, so every ``/v1`` error has DRF's shape:
``{"detail": ...}`` or a dict of field errors. The Mastodon API's handler starts
from this one's answer and reshapes it into Mastodon's ``{"error": ...}``.
"""
import logging

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from . import db as core_db
from . import redis as core_redis
from .metrics import rate_limit_refused
from .request_notes import notes_of

logger = logging.getLogger(__name__)


class ApplicationError(Exception):
    status_code: int = status.HTTP_400_BAD_REQUEST

    def __init__(self, message: str, *, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code


class NotFound(ApplicationError):
    status_code = status.HTTP_404_NOT_FOUND


class Forbidden(ApplicationError):
    status_code = status.HTTP_403_FORBIDDEN


class Conflict(ApplicationError):
    status_code = status.HTTP_409_CONFLICT


class Unavailable(ApplicationError):
    """A backing service the request needs is down: try again shortly."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE


def error_json(detail: str, status_code: int, /, **extra) -> JsonResponse:
    """The ``{"detail": ...}`` error body for answers made outside DRF's views
    (request guards, unknown URLs, probes), the same shape DRF's errors have."""
    return JsonResponse({"detail": detail, **extra}, status=status_code)


def as_drf_validation_error(exc: DjangoValidationError) -> exceptions.ValidationError:
    """A service's Django ``ValidationError`` as DRF's: its fields' messages, or ``detail``."""
    return exceptions.ValidationError(getattr(exc, "message_dict", None) or {"detail": exc.messages})


def exception_handler(exc, context):
    if isinstance(exc, exceptions.Throttled):
        # Every DRF throttle's refusal passes here: counted by the scope that refused it
        # (a view may have two), else the view's (DRF's ``throttle_scope``), else its name.
        view, request = context.get("view"), context.get("request")
        refused = notes_of(request).refused_scope if request is not None else None
        rate_limit_refused(scope=refused or getattr(view, "throttle_scope", None) or type(view).__name__)
    if isinstance(exc, ApplicationError):
        return Response({"detail": exc.message}, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = as_drf_validation_error(exc)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, (*core_db.UNREACHABLE, *core_redis.UNREACHABLE)):
        # A store that is down (no connection, a connection lost, a statement timed
        # out) is a temporary condition, not a bug in the request. Any other database
        # error (an IntegrityError, a ProgrammingError, a DataError) is a bug: it goes
        # on to Django's 500 and its log, never to "try again".
        logger.exception("backing store unavailable")
        return Response(
            {"detail": "Service temporarily unavailable, try again shortly."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )
    return drf_exception_handler(exc, context)
