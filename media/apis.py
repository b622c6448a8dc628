"""HTTP endpoints for media: a thin view over the presigning service."""
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.dates import iso_utc
from core.fields import StrictCharField

from . import services

# The request as OpenAPI states it: one of the allowed types, with at most its size.
_MEDIA_CREATE_REQUEST = {
    "oneOf": [{
        "type": "object",
        "required": ["content_type", "size_bytes"],
        "properties": {"content_type": {"type": "string", "enum": [content_type]},
                       "size_bytes": {"type": "integer", "minimum": 1, "maximum": limit}},
    } for content_type, (limit, _extension) in services.ALLOWED_TYPES.items()],
}


class MediaCreateApi(APIView):
    throttle_scope = "media"

    class MediaCreateInputSerializer(serializers.Serializer):
        content_type = StrictCharField(max_length=50)
        size_bytes = serializers.IntegerField(min_value=1)

    @extend_schema(request={"application/json": _MEDIA_CREATE_REQUEST}, responses={
        201: inline_serializer("MediaUpload", {
            "media_id": serializers.CharField(),
            "upload": inline_serializer("PresignedPost", {
                "url": serializers.URLField(),
                "fields": serializers.DictField(child=serializers.CharField()),
            }),
            "expires_at": serializers.DateTimeField(),
        }),
    })
    def post(self, request):
        """Presign an upload: POST ``upload.fields`` plus the ``file`` as multipart form data to ``upload.url``."""
        data = self.MediaCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        media, upload = services.media_create(owner_id=request.user.id, **data.validated_data)
        return Response({
            "media_id": str(media.id),
            "upload": {"url": upload["url"], "fields": upload["fields"]},
            "expires_at": iso_utc(services.upload_expires_at(media)),
        }, status=status.HTTP_201_CREATED)
