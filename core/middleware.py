"""Request guards that run before any view."""
from django.conf import settings

from .exceptions import error_json


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
