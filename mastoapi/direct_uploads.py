"""``POST /v1/media`` for OAuth tokens too: the presigned, direct-to-storage upload.

The web client at ``/`` signs in through OAuth like any other app, and uploads
its images the way ``/v1`` clients do (presign here, then POST the file straight
to storage), not through ``/api/v2/media``, so the bytes never pass through a
web process. A ``/v1`` JWT is taken as before (it carries every scope); an
OAuth token needs ``write:media``. The answer and its errors are ``/v1``'s.
"""
from drf_spectacular.extensions import OpenApiAuthenticationExtension

from media import apis as media_apis

from .authentication import HasScope, MastodonAuthentication


class PresignedMediaApi(media_apis.MediaCreateApi):
    http_method_names = ["post", "options"]
    authentication_classes = [MastodonAuthentication]
    permission_classes = [HasScope]
    required_scopes = {"POST": "write:media"}


class MastodonBearerScheme(OpenApiAuthenticationExtension):
    """Documents ``MastodonAuthentication`` where a ``/v1`` route takes it: a bearer token that
    is a ``/v1`` access JWT or an OAuth access token."""

    target_class = "mastoapi.authentication.MastodonAuthentication"
    name = "jwtOrOAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "A /v1 access JWT, or an OAuth access token with the write:media scope."}
