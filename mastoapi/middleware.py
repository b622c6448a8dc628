"""Mastodon's error body for the answers no Mastodon view makes.

The request guards and Django's error handlers (``core``: a body over the size
limit, a bad ``Content-Length``, a crash) answer before or around any view, in
the project's ``{"detail": ...}`` shape. Under Mastodon's paths a client
expects Mastodon's ``Error`` entity, so those answers are given its key there.
The Mastodon views answer ``{"error": ...}`` themselves (DRF responses, left
alone here).
"""
import json

from django.http import JsonResponse

PATHS = ("/api/", "/oauth/")


class MastodonErrorBodyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code >= 400 and isinstance(response, JsonResponse) and request.path.startswith(PATHS):
            body = json.loads(response.content)
            if isinstance(body, dict) and set(body) == {"detail"}:
                response.content = json.dumps({"error": body["detail"]})
                response["Content-Length"] = str(len(response.content))
        return response
