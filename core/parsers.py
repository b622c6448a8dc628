"""Request parsers: DRF's, refusing what no field may hold.

PostgreSQL cannot store NUL in text, and a lone UTF-16 surrogate (``"\\ud800"`` in
JSON) is no character at all: neither can be encoded as UTF-8. Refused here, once,
for every field of every body (keys included) and every query string
(``text_is_clean``), each is a 400 that names the problem, instead of an error
from deep in the database driver.
"""
import re
from collections.abc import Iterable

from rest_framework.exceptions import ParseError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser

# NUL, or a code point in the surrogate range (only a lone one can reach a Python str).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

UNSTORABLE_MESSAGE = "Text may not contain NUL characters or unpaired surrogates."


def text_is_clean(text: str) -> bool:
    """Whether ``text`` can be stored and encoded: no NUL, no lone surrogate."""
    return _UNSTORABLE.search(text) is None


def _strings(value) -> Iterable[str]:
    """Every string in a parsed body, dict keys included (iteratively: depth is bounded elsewhere)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def form_is_clean(data) -> bool:
    """Whether every key and value of a form or query string (a ``QueryDict``) is clean."""
    return all(text_is_clean(text) for key, values in data.lists() for text in (key, *values))


def refuse_unstorable(data):
    """``data`` as parsed, or a 400 when any string in it holds NUL or a lone surrogate."""
    if not all(text_is_clean(s) for s in _strings(data)):
        raise ParseError(UNSTORABLE_MESSAGE)
    return data


class SafeJSONParser(JSONParser):
    """DRF's JSON parser, but absurdly deep nesting is a 400 rather than a RecursionError (500),
    and so is text no field may hold."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        return refuse_unstorable(data)


class SafeFormParser(FormParser):
    """DRF's form parser (``%00`` decodes to NUL), refusing text no field may hold."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if not form_is_clean(data):
            raise ParseError(UNSTORABLE_MESSAGE)
        return data


class SafeMultiPartParser(MultiPartParser):
    """DRF's multipart parser, refusing text no field may hold in its fields and file names."""

    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        names = (text for field, uploads in parsed.files.lists() for text in (field, *(u.name or "" for u in uploads)))
        if not form_is_clean(parsed.data) or not all(text_is_clean(text) for text in names):
            raise ParseError(UNSTORABLE_MESSAGE)
        return parsed
