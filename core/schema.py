"""OpenAPI components shared by every app (``/v1/schema``): documentation only, never used to build responses.

Shapes that belong to one app are documented next to the code that builds them
(the tweet object in ``tweets.objects``, the timeline page in ``timelines.apis``, the
user page in ``social.apis``). The error answers any operation may give are added
here once, by :func:`error_responses_hook`, rather than on every view; a view
declares only the errors particular to it (403, 409).
"""
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

Detail = inline_serializer("Detail", {"detail": serializers.CharField()})

Status = inline_serializer("Status", {"status": serializers.CharField()})

_DETAIL = {"$ref": "#/components/schemas/Detail"}
_DETAIL_COMPONENT = {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
# DRF's two shapes of a 400: {"detail": "..."}, or messages by field (a list of
# strings, or, for the items of a list field, messages by index).
_FIELD_ERRORS_COMPONENT = {
    "type": "object",
    "description": "Messages by field name (`non_field_errors` for the input as a whole).",
    "additionalProperties": {"anyOf": [
        {"type": "array", "items": {"type": "string"}},
        {"type": "object"},
    ]},
}
_BAD_REQUEST = {"anyOf": [_DETAIL, {"$ref": "#/components/schemas/FieldErrors"}]}

_WHY = {
    "400": "Invalid input: `{\"detail\"}` or messages by field.",
    "401": "Missing, invalid or expired credentials.",
    "404": "No such resource (or not visible to you).",
    "413": "Request body too large.",
    "429": "Rate limited: retry after the `Retry-After` seconds.",
    "503": "A backing store is unavailable: retry after the `Retry-After` seconds.",
}
_METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}


def _answers_401(operation: dict, view) -> bool:
    """Operations that need a bearer token; and those that check credentials of their own
    (simplejwt's token views answer 401 for a wrong password or a bad refresh token)."""
    from rest_framework_simplejwt.views import TokenViewBase

    if any(requirement for requirement in operation.get("security") or []):
        return True
    return view is not None and issubclass(view, TokenViewBase)


def _set(responses: dict, code: str, schema: dict) -> None:
    if code not in responses:
        responses[code] = {"content": {"application/json": {"schema": schema}}, "description": _WHY[code]}


def _require_body(request_body: dict) -> None:
    """A body given as a plain schema (``extend_schema(request={...})``) that asks for fields
    is required, as drf-spectacular marks it for a serializer's."""
    for media in request_body.get("content", {}).values():
        if {"required", "anyOf", "oneOf"} & set(media.get("schema", {})):
            request_body["required"] = True


def error_responses_hook(result, generator, request, public):
    """drf-spectacular postprocessing hook: the errors every operation can answer, in DRF's shapes.

    - 400 where there is input (a body, query or header parameters);
    - 401 where credentials are checked (:func:`_answers_401`);
    - 404 where the path names a resource (an unknown or out-of-range id);
    - 413 where there is a body (``core.middleware.BodySizeLimitMiddleware``);
    - 429 everywhere: rate limits are per scope and configurable (``RATE_LIMIT_*``);
    - 503 everywhere: any request may find PostgreSQL or Redis down (``core.exceptions``).
    """
    views = {(path, method.lower()): getattr(callback, "cls", None)
             for path, _regex, method, callback in generator.endpoints}
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Detail", _DETAIL_COMPONENT)
    schemas["FieldErrors"] = _FIELD_ERRORS_COMPONENT
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            locations = {p.get("in") for p in operation.get("parameters", [])}
            body = "requestBody" in operation
            if body or locations & {"query", "header"}:
                responses["400"] = {"content": {"application/json": {"schema": _BAD_REQUEST}},
                                    "description": _WHY["400"]}
            if _answers_401(operation, views.get((path, method))):
                _set(responses, "401", _DETAIL)
            if "path" in locations:
                _set(responses, "404", _DETAIL)
            if body:
                _set(responses, "413", _DETAIL)
                _require_body(operation["requestBody"])
            _set(responses, "429", _DETAIL)
            _set(responses, "503", _DETAIL)
    return result
