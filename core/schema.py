"""OpenAPI components shared by every app (``/v1/schema``): documentation only, never used to build responses.

Shapes that belong to one app are documented next to the code that builds them
(the tweet object in ``tweets.objects``, the timeline page in ``timelines.apis``, the
user page in ``social.apis``).
"""
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

Detail = inline_serializer("Detail", {"detail": serializers.CharField()})

Status = inline_serializer("Status", {"status": serializers.CharField()})
