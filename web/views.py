"""The web client's one page: the same HTML at each of its routes, with what the
scripts need to know about this server that no API states (the counting rules
the compose counter applies, the media it may attach); everything else they ask
the APIs, as any app would (``docs/web-client.md``)."""
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from media.services import ALLOWED_TYPES, MAX_MEDIA_PER_TWEET
from tweets import text

# Scripts only from here; the APIs, the stream (another port) and storage (the S3
# endpoint, a CDN, signed URLs) may be anywhere, so connections and images may be too.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; "
                           "base-uri 'none'; frame-ancestors 'none'; form-action 'self'; "
                           "img-src 'self' blob: data: http: https:; media-src 'self' blob: http: https:; "
                           "connect-src 'self' http: https: ws: wss:")


@require_safe
def index(request, **route):
    config = {
        "counting": text.counting_rules(),
        "max_media": MAX_MEDIA_PER_TWEET,
        "media_types": {content_type: limit for content_type, (limit, _extension) in ALLOWED_TYPES.items()},
        "scopes": "read write follow",
        "sign_up_url": reverse("masto-sign-up"),
    }
    response = render(request, "web/index.html", {"config": config})
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response["Cache-Control"] = "no-cache"
    return response
