"""The web client's one page: the same HTML at each of its routes, with what the
scripts need to know about this server that no API states (where the counting
rules the compose counter applies are, the media it may attach); everything else
they ask the APIs, as any app would (``docs/web-client.md``)."""
import functools
import hashlib
import json

from django.http import HttpResponse
from django.shortcuts import redirect, render
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


@functools.cache
def _counting_rules() -> tuple[bytes, str]:
    """The rules as JSON (about 120 KB: the emoji list is most of it) and their version."""
    body = json.dumps(text.counting_rules(), separators=(",", ":")).encode()
    return body, hashlib.sha256(body).hexdigest()[:12]


@require_safe
def counting_rules(request, version: str):
    """The counting rules, at an address that names their version, so a browser keeps them
    for good; an older version's address leads to the current one."""
    body, current = _counting_rules()
    if version != current:
        return redirect("web-counting-rules", version=current)
    response = HttpResponse(body, content_type="application/json")
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


@require_safe
def index(request, **route):
    config = {
        "counting_rules_url": reverse("web-counting-rules", kwargs={"version": _counting_rules()[1]}),
        "max_characters": text.MAX_WEIGHTED_LENGTH,
        "max_media": MAX_MEDIA_PER_TWEET,
        "media_types": {content_type: limit for content_type, (limit, _extension) in ALLOWED_TYPES.items()},
        "scopes": "read write follow",
        "sign_up_url": reverse("masto-sign-up"),
    }
    response = render(request, "web/index.html", {"config": config})
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response["Cache-Control"] = "no-cache"
    return response
