"""JSON responses rendered with orjson: several times faster than the standard library's encoder."""
import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_fallback = JSONEncoder()


class FastJSONRenderer(JSONRenderer):
    """DRF's JSON renderer on orjson; anything orjson does not know (lazy strings,
    decimals, UUIDs) goes through DRF's own encoder, so the output is the same."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return orjson.dumps(data, default=_fallback.default)
