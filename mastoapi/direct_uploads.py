"""``POST /v1/media`` for OAuth tokens too: the presigned, direct-to-storage upload.

The web client at ``/`` signs in through OAuth like any other app, and uploads
its images the way ``/v1`` clients do (presign here, then POST the file straight
to storage), not through ``/api/v2/media``, so the bytes never pass through a
web process. A ``/v1`` JWT is taken as before (it carries every scope); an
OAuth token needs ``write:media``. The answer and its errors are ``/v1``'s.
"""
from media import apis as media_apis

from .authentication import HasScope, MastodonAuthentication


class PresignedMediaApi(media_apis.MediaCreateApi):
    authentication_classes = [MastodonAuthentication]
    permission_classes = [HasScope]
    required_scopes = {"POST": "write:media"}
