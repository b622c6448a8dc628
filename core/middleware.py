"""Request guards that run before any view."""
from django.conf import settings

from .exceptions import error_json
from .parsers import UNSTORABLE_MESSAGE, form_is_clean


class BodySizeLimitMiddleware:
    """Refuse bodies over ``MAX_REQUEST_BODY_BYTES`` with 413 before anything reads them
    (over ``MAX_UPLOAD_BODY_BYTES`` for the paths in ``UPLOAD_PATHS``, which carry files)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_json("Invalid Content-Length header.", 400)
        limit = (settings.MAX_UPLOAD_BODY_BYTES if request.path in settings.UPLOAD_PATHS
                 else settings.MAX_REQUEST_BODY_BYTES)
        if length > limit:
            response = error_json(f"Request body larger than {limit} bytes.", 413)
            if request.META.get("SERVER_SOFTWARE", "").startswith("gunicorn"):
                # The unread body is still on the socket: tell the client this
                # connection ends here rather than let it reuse a broken one.
                response["Connection"] = "close"
            return response
        return self.get_response(request)


class UnstorableTextGuardMiddleware:
    """Refuse a query string or a form body that decodes to text no field may hold
    (``%00``) with 400, before a view filters by it, the admin searches for it or a
    form outside DRF (the sign-in pages, the OAuth consent) looks anything up by it.
    DRF's own parsers refuse it in every body they read (``core.parsers``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if ("%00" in query or "\x00" in query) and not form_is_clean(request.GET):
            return error_json(UNSTORABLE_MESSAGE, 400)
        if (request.method == "POST" and request.content_type == "application/x-www-form-urlencoded"
                and request.path not in settings.UPLOAD_PATHS):  # those refuse any body but a file's
            body = request.body  # at most MAX_REQUEST_BODY_BYTES (above), kept for whoever reads it next
            if (b"%00" in body or b"\x00" in body) and not form_is_clean(request.POST):
                return error_json(UNSTORABLE_MESSAGE, 400)
        return self.get_response(request)
